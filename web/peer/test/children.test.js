// A browser that offers slots, as a parent (children.js), driven through
// its inputs: what mesh.Machine's children expect of their parent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Leaf } from '../src/leaf.js';
import { message, Type, Reason } from '../src/wire.js';
import { create } from '@bufbuild/protobuf';
import { ChunkSchema } from '../src/gen/chunk_pb.js';

const name = (t) => Object.keys(Type).find((k) => Type[k] === t);
const sent = (rd) => rd.messages.map(({ to, msg }) => `${to.id}:${name(msg.type)}`);
const part = (seq, flags = 0) => create(ChunkSchema, { broadcast: 'root.x', seq: BigInt(seq), flags, payload: new Uint8Array([1]) });
const path = (...ids) => ids.map((id) => ({ id, addrs: [`/${id}`] }));

// relay returns a browser with slots, adopted by 'full' at depth 2, that
// holds an init and chunks 10–14 (12 a keyframe).
function relay(slots = 2) {
  const r = new Leaf({ self: { id: 'me', addrs: ['/me-circuit'] }, root: { id: 'root', addrs: [] }, broadcast: 'root.x', config: { slots } });
  r.addCandidates(0, [{ id: 'full', addrs: ['/full'] }]);
  r.tick(0);
  const attach = r.ready().messages[0].msg;
  assert.equal(attach.capacity, slots);
  assert.equal(attach.free, slots);
  assert.deepEqual(attach.addrs, ['/me-circuit']);
  r.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  r.step(20, 'full', message(Type.CHUNK, { chunk: part(10, 2) }));
  for (const s of [10, 11, 12, 13, 14]) r.step(20, 'full', message(Type.CHUNK, { chunk: part(s, s === 12 ? 1 : 0) }));
  r.ready();
  return r;
}

test('adopts a child: accept with the path through us, then the init and the chunks from the latest keyframe', () => {
  const r = relay();
  r.step(30, 'kid', message(Type.ATTACH, { addrs: ['/kid'] }));
  const rd = r.ready();
  assert.deepEqual(sent(rd), ['kid:ACCEPT', 'kid:CHUNK', 'kid:CHUNK', 'kid:CHUNK', 'kid:CHUNK']);
  assert.deepEqual(rd.messages[0].msg.path.map((p) => p.id), ['root', 'full', 'me']);
  assert.deepEqual(rd.messages[0].msg.path[2].addrs, ['/me-circuit']);
  assert.equal(rd.messages[0].msg.depth, 2);
  assert.deepEqual(rd.messages.slice(1).map((m) => Number(m.msg.chunk.seq)), [10, 12, 13, 14]); // the init (seq 10), then 12..14
  // A returning child asking from 13 gets the init and 12.. (from want-1).
  r.step(40, 'kid', message(Type.ATTACH, { seq: 14n }));
  assert.deepEqual(r.ready().messages.slice(1).map((m) => Number(m.msg.chunk.seq)), [10, 13, 14]);
});

test('forwards every verified chunk to its children, never back to the sender', () => {
  const r = relay();
  r.step(30, 'kid', message(Type.ATTACH, {}));
  r.step(30, 'kid2', message(Type.ATTACH, {}));
  r.ready();
  r.step(40, 'full', message(Type.CHUNK, { chunk: part(15) }));
  assert.deepEqual(sent(r.ready()), ['kid:CHUNK', 'kid2:CHUNK']);
  r.step(41, 'kid', message(Type.CHUNK, { chunk: part(16) }));
  assert.deepEqual(sent(r.ready()), ['kid2:CHUNK']);
});

test('reports its slots, free slots and subtree, and redirects when full', () => {
  const r = relay(1);
  r.step(30, 'kid', message(Type.ATTACH, {}));
  r.step(31, 'kid', message(Type.STATUS, { capacity: 2, free: 2, subtree: 1 }));
  r.ready();
  r.step(300, 'full', message(Type.PATH, { depth: 1 }));
  r.tick(300);
  const st = r.ready().messages.find((m) => m.msg.type === Type.STATUS).msg;
  assert.equal(st.capacity, 1); assert.equal(st.free, 0); assert.equal(st.subtree, 2);
  assert.deepEqual(st.candidates.map((c) => [c.peer.id, c.depth, c.free]), [['kid', 3, 2]]);
  r.step(310, 'late', message(Type.ATTACH, {}));
  const rd = r.ready();
  assert.deepEqual(sent(rd), ['late:REDIRECT']);
  assert.deepEqual(rd.messages[0].msg.candidates.map((c) => c.peer.id), ['kid']);
});

test('refuses an attach from an ancestor, and any while out of the tree', () => {
  const r = relay();
  r.step(30, 'full', message(Type.ATTACH, {}));
  assert.equal(r.ready().messages[0].msg.reason, Reason.LOOP);
  r.peerDown(40, 'full');
  r.ready();
  r.step(41, 'kid', message(Type.ATTACH, {}));
  assert.equal(r.ready().messages.find((m) => m.to.id === 'kid').msg.reason, Reason.DETACHED);
});

test('heartbeats idle children, drops silent ones, serves their pulls', () => {
  const r = relay();
  r.step(30, 'kid', message(Type.ATTACH, {}));
  r.ready();
  r.step(300, 'full', message(Type.PATH, { depth: 1 }));
  r.tick(300);
  const hb = r.ready().messages.find((m) => m.to.id === 'kid');
  assert.equal(name(hb.msg.type), 'PATH'); assert.equal(hb.msg.depth, 2);
  r.step(310, 'kid', message(Type.PULL, { seq: 11n, count: 2 }));
  assert.deepEqual(r.ready().messages.map((m) => Number(m.msg.chunk.seq)), [11, 12]);
  r.step(320, 'stranger', message(Type.PULL, { seq: 11n, count: 2 }));
  assert.deepEqual(sent(r.ready()), []);
  for (let t = 400; t <= 2400; t += 100) { r.step(t, 'full', message(Type.PATH, { depth: 1 })); r.tick(t); }
  assert.deepEqual(r.snapshot().children, []);
});

test('leaving sends the children to the parent and the room below', () => {
  const r = relay();
  r.step(30, 'kid', message(Type.ATTACH, {}));
  r.step(30, 'kid2', message(Type.ATTACH, {}));
  r.step(31, 'kid2', message(Type.STATUS, { capacity: 1, free: 1, subtree: 1 }));
  r.ready();
  r.leave();
  const rd = r.ready();
  assert.deepEqual(sent(rd), ['full:LEAVE', 'kid:LEAVE', 'kid2:LEAVE']);
  assert.deepEqual(rd.messages[1].msg.candidates.map((c) => c.peer.id), ['full', 'kid2']);
  assert.deepEqual(rd.messages[2].msg.candidates.map((c) => c.peer.id), ['full']);
});

test('new addresses (a relay reservation) reach the parent as an attach again, and the children as a path', () => {
  const r = relay();
  r.step(30, 'kid', message(Type.ATTACH, {}));
  r.ready();
  r.setAddrs(40, ['/me-new-circuit']);
  const rd = r.ready();
  assert.deepEqual(sent(rd), ['full:ATTACH', 'kid:PATH']);
  assert.deepEqual(rd.messages[0].msg.addrs, ['/me-new-circuit']);
  assert.deepEqual(rd.messages[1].msg.path[2].addrs, ['/me-new-circuit']);
  // The parent's accept again changes nothing but the status it asks for.
  r.step(50, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  assert.equal(r.snapshot().parent, 'full');
  assert.equal(r.snapshot().rejoins, 0);
});
