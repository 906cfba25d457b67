// The wire: frames the Go codec writes are read to what they mean, the
// leaf's messages are written to the Go codec's bytes, and what the Go
// decoder refuses is refused (js_test.go makes the vectors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Frames, decode, frame, message, WireError, Type } from '../src/wire.js';
import { vectors, hex, toHex } from './vectors.js';

const skip = vectors ? false : 'run by go test ./web/peer (TestJS)';

// plain turns a decoded Message into the form the vectors use.
function plain(m) {
  const peer = (p) => ({ id: p.id, addrs: [...p.addrs] });
  const cand = (c) => ({ peer: peer(c.peer), depth: c.depth, free: c.free, proven: c.proven });
  return {
    type: m.type, seq: String(m.seq), count: m.count, time: String(BigInt.asUintN(64, m.time)),
    capacity: m.capacity, free: m.free, subtree: m.subtree, depth: m.depth,
    path: m.path.map(peer), candidates: m.candidates.map(cand),
    addrs: [...m.addrs], reason: m.reason, flags: m.flags, lost: m.lost,
    counters: m.counters.map((c) => ({ name: c.name, value: String(c.value) })),
    parent: m.parent, vouches: m.vouches.map(cand),
  };
}

test('frames the Go codec writes decode to what they mean', { skip }, () => {
  for (const v of vectors.messages) {
    const frames = new Frames().push(hex(v.frame));
    assert.equal(frames.length, 1, v.name);
    assert.deepEqual(plain(decode(frames[0])), v.want, v.name);
  }
});

test('frames split anywhere come out whole, in order', { skip }, () => {
  const all = Uint8Array.from(vectors.messages.flatMap((v) => [...hex(v.frame)]));
  for (const step of [1, 2, 3, 7, 64, all.length]) {
    const f = new Frames();
    const got = [];
    for (let i = 0; i < all.length; i += step) got.push(...f.push(all.subarray(i, i + step)));
    assert.equal(got.length, vectors.messages.length, `step ${step}`);
    got.forEach((b, i) => assert.equal(toHex(b), vectors.messages[i].frame.slice(-2 * b.length), `step ${step}, frame ${i}`));
  }
});

test('what the leaf sends is written as the Go codec writes it', { skip }, () => {
  // Proto3 has one encoding for these: the same bytes, field by field.
  for (const v of vectors.messages) {
    const m = decode(new Frames().push(hex(v.frame))[0]);
    assert.equal(toHex(frame(m)), v.frame, v.name);
  }
  assert.equal(toHex(frame(message(Type.STATUS, { subtree: 1 }))),
    vectors.messages.find((v) => v.name === 'status of a leaf').frame);
  // The receipt as trust.js builds it.
  assert.equal(toHex(frame(message(Type.RECEIPT, { parent: '12D3KooWMid', seq: 1235n, count: 5, subtree: 1 }))),
    vectors.messages.find((v) => v.name === 'receipt').frame);
});

test('what the Go decoder refuses is refused', { skip }, () => {
  for (const v of vectors.refused) {
    assert.throws(() => {
      for (const b of new Frames().push(hex(v.frame))) decode(b);
    }, WireError, v.name);
  }
});

test('garbage is a WireError, never a crash', () => {
  for (const b of [[0xff], [0x08, 0x01, 0x12, 0x05, 0x0a], [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]]) {
    assert.throws(() => decode(Uint8Array.from(b)), WireError);
  }
  assert.throws(() => new Frames().push(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), WireError);
});

test('a known field with another wire type, or a chunk field twice, is refused', () => {
  // type (1) as bytes; a chunk (2) as a varint; a chunk whose seq (2) comes twice.
  for (const b of [[0x0a, 0x01, 0x01], [0x08, 0x01, 0x10, 0x05], [0x08, 0x01, 0x12, 0x04, 0x10, 0x01, 0x10, 0x02]]) {
    assert.throws(() => decode(Uint8Array.from(b)), WireError, String(b));
  }
});
