// The leaf's state machine on its own, driven through its inputs only (as
// mesh's scenario tests drive mesh.Machine): times in ms, messages as the
// wire decodes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Leaf, NO_DEPTH } from '../src/leaf.js';
import { message, Type, Reason } from '../src/wire.js';
import { ATTACH_WITHHELD } from '../src/trust.js';
import { create } from '@bufbuild/protobuf';
import { ChunkSchema } from '../src/gen/chunk_pb.js';

const ROOT = { id: 'root', addrs: ['r'] };
const FULL = { id: 'full', addrs: ['f'] };
const OTHER = { id: 'other', addrs: ['o'] };

function leaf(config) {
  const l = new Leaf({ self: { id: 'me', addrs: [] }, root: ROOT, broadcast: 'root.x', config });
  l.addCandidates(0, [FULL]);
  return l;
}
const part = (seq, flags = 0) => create(ChunkSchema, { broadcast: 'root.x', seq: BigInt(seq), flags, payload: new Uint8Array([seq & 0xff]) });
const sent = (rd) => rd.messages.map(({ to, msg }) => `${to.id}:${Object.keys(Type).find((k) => Type[k] === msg.type)}`);
const path = (...ids) => ids.map((id) => ({ id, addrs: [id[0]] }));

// attached returns a leaf adopted by FULL (depth 2: root, full).
function attached() {
  const l = leaf();
  l.tick(0);
  l.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  l.ready();
  return l;
}

test('attaches to the page\'s node with no slots, from the live edge, then reports and keeps reporting', () => {
  const l = leaf();
  l.tick(0);
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['full:ATTACH']);
  const a = rd.messages[0].msg;
  assert.equal(a.capacity, 0); assert.equal(a.free, 0); assert.equal(a.seq, 0n); assert.equal(a.lost, '');
  l.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  assert.deepEqual(sent(l.ready()), ['full:STATUS']);
  assert.equal(l.snapshot().depth, 2);
  // Heartbeats keep the parent; a status goes every 600 ms.
  for (let t = 100; t <= 2000; t += 100) {
    l.step(t, 'full', message(Type.PATH, { depth: 1 }));
    l.tick(t);
  }
  const statuses = sent(l.ready()).filter((s) => s === 'full:STATUS').length;
  assert.equal(statuses, 3);
  assert.equal(l.snapshot().state, 'attached');
});

test('follows a redirect to the room it names', () => {
  const l = leaf();
  l.tick(0);
  l.ready();
  l.step(5, 'full', message(Type.REDIRECT, { candidates: [{ peer: OTHER, depth: 2, free: 1 }] }));
  assert.deepEqual(sent(l.ready()), ['other:ATTACH']);
});

test('a silent parent is left for the grandparent, asked from the first chunk missing, named as lost', () => {
  const l = attached();
  l.step(20, 'full', message(Type.CHUNK, { chunk: part(5, 1) }));
  l.step(30, 'full', message(Type.CHUNK, { chunk: part(6) }));
  l.ready();
  l.tick(900); // 870 ms of silence > ParentTimeout (800)
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['root:ATTACH']);
  assert.equal(rd.messages[0].msg.seq, 8n); // 1 + 7, the first missing
  assert.equal(rd.messages[0].msg.lost, 'full');
  l.step(950, 'root', message(Type.ACCEPT, { path: path('root'), depth: 0 }));
  assert.equal(l.snapshot().rejoins, 1);
  assert.equal(l.snapshot().parent, 'root');
});

test('a parent that sends a forged chunk is left and banned', () => {
  const l = attached();
  l.forged(50, 'full', 'bad signature');
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['full:LEAVE', 'root:ATTACH']);
  // Named as misbehaving, not merely lost: the grandparent believes it and
  // sends nobody else to the forger.
  assert.equal(rd.messages[1].msg.lost, 'full');
  assert.equal(rd.messages[1].msg.flags & ATTACH_WITHHELD, ATTACH_WITHHELD);
  assert.equal(l.snapshot().forged, 1);
  // Banned: what it says is ignored, and it is not asked again.
  l.step(60, 'full', message(Type.ACCEPT, { path: path('root', 'full') }));
  assert.equal(l.snapshot().parent, '');
  l.step(70, 'root', message(Type.REJECT, { reason: Reason.FULL }));
  assert.ok(!sent(l.ready()).includes('full:ATTACH'));
});

test('each chunk is delivered once; a hole is pulled after 400 ms, from the parent first', () => {
  const l = attached();
  for (const s of [10, 11, 13, 11]) l.step(20, 'full', message(Type.CHUNK, { chunk: part(s) }));
  assert.deepEqual(l.ready().deliver.map((c) => Number(c.seq)), [10, 11, 13]);
  assert.equal(l.snapshot().duplicates, 1);
  l.step(300, 'full', message(Type.PATH, { depth: 1 }));
  l.tick(300);
  assert.ok(!sent(l.ready()).includes('full:PULL'));
  l.step(450, 'full', message(Type.PATH, { depth: 1 }));
  l.tick(450);
  const rd = l.ready();
  const pull = rd.messages.find((m) => m.msg.type === Type.PULL);
  assert.equal(pull.to.id, 'full');
  assert.equal(pull.msg.seq, 12n); assert.equal(pull.msg.count, 1);
  l.step(460, 'other', message(Type.CHUNK, { chunk: part(12) }));
  assert.deepEqual(l.ready().deliver.map((c) => Number(c.seq)), [12]);
});

test('answers pings, refuses to adopt, tells a stray child to go', () => {
  const l = attached();
  l.step(20, 'other', message(Type.PING, { time: 42n }));
  l.step(20, 'other', message(Type.ATTACH, { capacity: 3 }));
  l.step(20, 'other', message(Type.STATUS, { subtree: 1 }));
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['other:PONG', 'other:REJECT', 'other:LEAVE']);
  assert.equal(rd.messages[0].msg.time, 42n);
  assert.equal(rd.messages[0].msg.depth, 2);
  assert.equal(rd.messages[1].msg.reason, Reason.FULL);
});

test('a parent out of the tree for twice ParentTimeout is left', () => {
  const l = attached();
  for (let t = 100; t <= 1800; t += 100) { l.step(t, 'full', message(Type.PATH, { depth: NO_DEPTH })); l.tick(t); }
  assert.ok(sent(l.ready()).includes('full:LEAVE'));
  assert.notEqual(l.snapshot().parent, 'full');
});

test('a leave with hints goes to the hint', () => {
  const l = attached();
  l.step(20, 'full', message(Type.LEAVE, { candidates: [{ peer: OTHER, depth: 1, free: 1 }] }));
  assert.deepEqual(sent(l.ready()), ['other:ATTACH']);
});

test('unknown message types of a newer protocol are ignored', () => {
  const l = attached();
  l.step(20, 'full', message(14, { seq: 5n }));
  assert.deepEqual(sent(l.ready()), []);
  assert.equal(l.snapshot().parent, 'full');
});

test('an attach waits for the stream to open, then AttachTimeout: a slow WebRTC handshake is no refusal', () => {
  const open = new Set();
  const l = new Leaf({ self: { id: 'me', addrs: [] }, root: ROOT, broadcast: 'root.x', connected: (id) => open.has(id) });
  l.addCandidates(0, [FULL]);
  l.tick(0);
  assert.deepEqual(sent(l.ready()), ['full:ATTACH']);
  // 1.5 s of handshake: the attach has not even gone; it is not given up.
  l.tick(1500);
  assert.deepEqual(sent(l.ready()), []);
  open.add('full');
  l.opened(1600, 'full');
  l.tick(2500);
  assert.deepEqual(sent(l.ready()), []);
  l.step(2550, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  assert.equal(l.snapshot().parent, 'full');
  // To a peer whose stream is open, AttachTimeout alone: after a loss the
  // ancestors (connected already) are asked, and given up after 1 s.
  l.tick(2600);
  l.ready();
  open.add('root');
  l.tick(3500); // silent for 950 ms > ParentTimeout
  assert.deepEqual(sent(l.ready()), ['root:ATTACH']);
  l.tick(4400);
  assert.equal(l.snapshot().state, 'attaching');
  l.tick(4600);
  assert.equal(l.snapshot().state, 'detached', 'the broadcaster given up after AttachTimeout (and the lost parent cooling)');
});

// raced returns a leaf with race 3 that the page's node redirected to
// three members with room: it has asked all three.
function raced() {
  const l = leaf({ race: 3 });
  l.tick(0);
  l.ready();
  const c = (id) => ({ peer: { id, addrs: [id[0]] }, depth: 2, free: 1 });
  l.step(5, 'full', message(Type.REDIRECT, { candidates: [c('a1'), c('b1'), c('c1')] }));
  return l;
}

test('a race: the first of those asked to accept is the parent, the others are left', () => {
  const l = raced();
  assert.deepEqual(sent(l.ready()), ['a1:ATTACH', 'b1:ATTACH', 'c1:ATTACH']);
  l.step(20, 'b1', message(Type.ACCEPT, { path: path('root', 'full', 'b1'), depth: 2 }));
  const rd = l.ready();
  assert.deepEqual(sent(rd).sort(), ['a1:LEAVE', 'b1:STATUS', 'c1:LEAVE']);
  assert.deepEqual(rd.events.filter((e) => e.type === 'race-lost').map((e) => e.peer).sort(), ['a1', 'c1']);
  assert.equal(l.snapshot().parent, 'b1');
  assert.equal(l.uses('a1'), false);
  assert.equal(l.uses('b1'), true);
  // One that accepts after all is undone again.
  l.step(30, 'a1', message(Type.ACCEPT, { path: path('root', 'full', 'a1'), depth: 2 }));
  assert.deepEqual(sent(l.ready()), ['a1:LEAVE']);
  assert.equal(l.snapshot().parent, 'b1');
});

test('a race goes on while any of those asked may accept: refusals and silence drop them one by one', () => {
  const l = raced();
  l.ready();
  l.step(10, 'a1', message(Type.REDIRECT, { candidates: [] })); // the first asked redirects
  l.step(11, 'c1', message(Type.REJECT, { reason: Reason.FULL }));
  assert.equal(l.snapshot().state, 'attaching');
  assert.deepEqual(sent(l.ready()), []); // nobody new asked: b1 may still answer
  l.step(50, 'b1', message(Type.ACCEPT, { path: path('root', 'full', 'b1'), depth: 2 }));
  assert.equal(l.snapshot().parent, 'b1');
  // All silent past their deadlines: the leaf joins afresh.
  const q = raced();
  q.ready();
  q.tick(10000);
  assert.equal(q.snapshot().state, 'attaching');
  assert.ok(sent(q.ready()).every((s) => s.endsWith(':ATTACH')));
});

test('no race on a rejoin: its attach names the parent lost, for the one asked only', () => {
  const l = attached();
  l.learn({ id: 'a1', addrs: ['a'] }, 2, 1, true);
  l.learn({ id: 'b1', addrs: ['b'] }, 2, 1, true);
  l.cfg.race = 3;
  l.step(100, 'full', message(Type.LEAVE));
  assert.equal(sent(l.ready()).filter((s) => s.endsWith(':ATTACH')).length, 1);
});
