// peer.js's choice of addresses: what a browser can dial (dialable), and
// the order it dials a full node in (nodeDials): WebTransport first,
// bounded, then WebRTC-direct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { multiaddr } from '@multiformats/multiaddr';
import { dialable, nodeDials } from '../src/peer.js';

const id = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const hash = 'uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g';
const wt = `/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/${hash}/certhash/${hash}`;
const direct = `/ip4/127.0.0.1/udp/1235/webrtc-direct/certhash/${hash}`;
const circuit = `${wt}/p2p/${id}/p2p-circuit/webrtc`;

test('dialable keeps WebTransport and WebRTC-direct with certhash, and circuits to browsers', () => {
  const bare = '/ip4/127.0.0.1/udp/1234/quic-v1/webtransport';
  assert.deepEqual(dialable([wt, direct, circuit, bare, '/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/udp/1/quic-v1', 'junk']),
    [wt, direct, circuit]);
});

test('nodeDials tries WebTransport first, bounded, then WebRTC-direct', () => {
  const addrs = [direct, wt].map(multiaddr);
  const d = nodeDials(addrs, true);
  assert.equal(d.length, 2);
  assert.deepEqual(d.map((x) => x.via), ['node-wt', 'node']);
  assert.deepEqual(d[0].addrs.map(String), [wt]);
  assert.deepEqual(d[1].addrs.map(String), [direct]);
  assert.ok(d[0].ms < d[1].ms, 'WebTransport gets the shorter bound');
});

test('nodeDials without WebTransport in the browser, or without the address', () => {
  assert.deepEqual(nodeDials([direct, wt].map(multiaddr), false).map((x) => [x.via, x.addrs.map(String)]), [['node', [direct]]]);
  assert.deepEqual(nodeDials([direct].map(multiaddr), true).map((x) => [x.via, x.addrs.map(String)]), [['node', [direct]]]);
  const only = nodeDials([wt].map(multiaddr), true);
  assert.deepEqual(only.map((x) => [x.via, x.addrs.map(String)]), [['node-wt', [wt]]]);
});
