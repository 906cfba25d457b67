// What /peerscope/mesh/1.2.0 asks of a child (trust.js), driven through the
// leaf's inputs only: receipts to the grandparent, edges, withholding,
// handovers made before break. The figures are mesh.DefaultConfig's:
// ReceiptInterval and WithholdTimeout 1 s, chunks every 200 ms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Leaf } from '../src/leaf.js';
import { ATTACH_IMPROVE, ATTACH_WITHHELD, LEAVE_HANDOVER } from '../src/trust.js';
import { message, Type, Reason } from '../src/wire.js';
import { create } from '@bufbuild/protobuf';
import { ChunkSchema } from '../src/gen/chunk_pb.js';

const name = (t) => Object.keys(Type).find((k) => Type[k] === t);
const sent = (rd) => rd.messages.map(({ to, msg }) => `${to.id}:${name(msg.type)}`);
const part = (seq, flags = 0) => create(ChunkSchema, { broadcast: 'root.x', seq: BigInt(seq), flags, payload: new Uint8Array([1]) });
const path = (...ids) => ids.map((id) => ({ id, addrs: [`/${id}`] }));
const OTHER = { id: 'other', addrs: ['/other'] };

// under returns a leaf adopted at t=10 by `parent` (path root..parent),
// holding chunks 0..9 from it.
function under(...ids) {
  const l = new Leaf({ self: { id: 'me', addrs: [] }, root: { id: 'root', addrs: ['/root'] }, broadcast: 'root.x' });
  const parent = ids.at(-1);
  l.addCandidates(0, [{ id: parent, addrs: [`/${parent}`] }]);
  l.tick(0);
  l.step(10, parent, message(Type.ACCEPT, { path: path(...ids), depth: ids.length - 1 }));
  for (let s = 0; s < 10; s++) l.step(10, parent, message(Type.CHUNK, { chunk: part(s, s === 0 ? 1 : 0) }));
  l.ready();
  return l;
}

test('at depth 2 receipts go to the grandparent every second: the parent, what is held, what came since', () => {
  const l = under('root', 'full');
  l.tick(20);
  let rd = l.ready();
  const r = rd.messages.find((m) => m.msg.type === Type.RECEIPT);
  assert.equal(r.to.id, 'root', 'at once: the grandparent is new');
  assert.equal(r.msg.parent, 'full');
  assert.equal(r.msg.seq, 10n); // 1 + 9
  assert.equal(r.msg.count, 10);
  assert.equal(r.msg.subtree, 1);
  // Chunks on every 200 ms: the next receipt a second later counts them.
  let seq = 10;
  const receipts = [];
  for (let t = 100; t <= 3000; t += 100) {
    if (t % 200 === 0) l.step(t, 'full', message(Type.CHUNK, { chunk: part(seq++) }));
    l.tick(t);
    rd = l.ready();
    for (const m of rd.messages) if (m.msg.type === Type.RECEIPT) receipts.push({ t, ...m.msg });
  }
  assert.deepEqual(receipts.map((x) => x.t), [1100, 2100]);
  assert.deepEqual(receipts.map((x) => x.count), [5, 5]);
  assert.equal(receipts[1].seq, 20n); // chunks 10..19 came by t=2000
  assert.ok(receipts.every((x) => x.parent === 'full'));
});

test('under the broadcaster there is no grandparent: no receipts', () => {
  const l = under('root');
  for (let t = 100; t <= 3000; t += 100) { l.step(t, 'root', message(Type.CHUNK, { chunk: part(10 + t / 100) })); l.tick(t); }
  assert.ok(!sent(l.ready()).some((s) => s.endsWith(':RECEIPT')));
});

test('a grandparent the browser cannot reach is not sent receipts', () => {
  const l = new Leaf({ self: { id: 'me', addrs: [] }, root: { id: 'root', addrs: [] }, broadcast: 'root.x', usable: (info) => info.id !== 'root' });
  l.addCandidates(0, [{ id: 'full', addrs: ['/full'] }]);
  l.tick(0);
  l.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  l.tick(20);
  assert.ok(!sent(l.ready()).includes('root:RECEIPT'));
});

test('a pong says what the browser holds', () => {
  const l = under('root', 'full');
  l.step(20, 'other', message(Type.PING, { time: 7n }));
  const pong = l.ready().messages[0].msg;
  assert.equal(pong.type, Type.PONG);
  assert.equal(pong.seq, 10n);
  assert.equal(pong.depth, 2);
});

test('a parent that withholds: the edge is ahead, its heartbeats say it holds more; it is banned and named', () => {
  const l = under('root', 'full');
  // Nothing new from the parent after t=10; its heartbeats say it holds 20.
  for (let t = 100; t <= 1000; t += 100) {
    l.step(t, 'full', message(Type.PATH, { depth: 1, seq: 20n }));
    if (t === 600) l.step(t, 'root', message(Type.EDGE, { seq: 18n })); // the grandparent's answer to a receipt
    l.tick(t);
  }
  assert.equal(l.snapshot().parent, 'full', 'not before WithholdTimeout');
  l.step(1100, 'full', message(Type.PATH, { depth: 1, seq: 21n }));
  l.tick(1100);
  const rd = l.ready();
  const attach = rd.messages.find((m) => m.msg.type === Type.ATTACH);
  assert.ok(sent(rd).includes('full:LEAVE'));
  assert.equal(attach.to.id, 'root');
  assert.equal(attach.msg.lost, 'full');
  assert.equal(attach.msg.flags, ATTACH_WITHHELD);
  assert.equal(l.snapshot().withheld, 1);
  assert.ok(rd.events.some((e) => e.type === 'parent-lost' && e.why === 'withheld'));
  // Banned: its accept is ignored.
  l.step(1200, 'full', message(Type.ACCEPT, { path: path('root', 'full') }));
  assert.equal(l.snapshot().parent, '');
});

test('an edge from a peer outside the path, or a quiet broadcast, is no withholding', () => {
  const l = under('root', 'full');
  for (let t = 100; t <= 4000; t += 100) {
    // The parent holds what we hold: the stream stands still.
    l.step(t, 'full', message(Type.PATH, { depth: 1, seq: 10n }));
    if (t % 500 === 0) l.step(t, 'other', message(Type.EDGE, { seq: 30n }));
    l.tick(t);
  }
  assert.equal(l.snapshot().parent, 'full');
  assert.equal(l.snapshot().withheld, 0);
});

test('a new parent that sends not one chunk while its heartbeats say it has new ones is left at once', () => {
  const l = under('root', 'full');
  l.step(100, 'full', message(Type.LEAVE, { candidates: [{ peer: OTHER, depth: 2, free: 1 }] }));
  l.step(150, 'other', message(Type.ACCEPT, { path: path('root', 'full', 'other'), depth: 2 }));
  l.ready();
  l.step(300, 'other', message(Type.PATH, { depth: 2, seq: 12n }));
  l.tick(300);
  l.step(600, 'other', message(Type.PATH, { depth: 2, seq: 14n }));
  l.tick(600);
  assert.equal(l.snapshot().parent, 'other', 'within three chunk intervals');
  l.tick(760);
  const rd = l.ready();
  assert.ok(sent(rd).includes('other:LEAVE'));
  assert.equal(l.snapshot().withheld, 1);
});

test('a handover: the browser moves to the relay named, fed by its parent until the relay delivers', () => {
  const l = under('root', 'full');
  l.step(100, 'full', message(Type.LEAVE, { flags: LEAVE_HANDOVER, candidates: [{ peer: OTHER, depth: 2, free: 3 }] }));
  let rd = l.ready();
  assert.deepEqual(sent(rd), ['other:ATTACH']);
  assert.equal(rd.messages[0].msg.flags, ATTACH_IMPROVE);
  assert.equal(rd.messages[0].msg.lost, '', 'the parent is not lost: it still feeds us');
  assert.equal(rd.messages[0].msg.seq, 11n);
  assert.equal(l.snapshot().parent, 'full');
  // The old parent goes on feeding: its chunks are taken, it is not left.
  l.step(150, 'full', message(Type.CHUNK, { chunk: part(10) }));
  l.step(200, 'other', message(Type.ACCEPT, { path: path('root', 'full', 'other'), depth: 2 }));
  rd = l.ready();
  assert.equal(l.snapshot().parent, 'other');
  assert.equal(l.snapshot().depth, 3);
  assert.ok(!sent(rd).includes('full:LEAVE'), 'not before the relay delivers');
  assert.ok(rd.events.some((e) => e.type === 'attached' && e.moved && !e.rejoin));
  l.step(250, 'full', message(Type.CHUNK, { chunk: part(11) }));
  assert.deepEqual(l.ready().deliver.map((c) => Number(c.seq)), [11]);
  l.step(300, 'other', message(Type.CHUNK, { chunk: part(12) }));
  rd = l.ready();
  assert.ok(sent(rd).includes('full:LEAVE'), 'the relay delivered: the old parent is left');
  // Receipts now go to the new grandparent, about the new parent.
  l.tick(310);
  const r = l.ready().messages.find((m) => m.msg.type === Type.RECEIPT);
  assert.equal(r.to.id, 'full');
  assert.equal(r.msg.parent, 'other');
});

test('a handover to a relay that delivers nothing: back under the old parent, the relay named as a withholder', () => {
  const l = under('root', 'full');
  l.step(100, 'full', message(Type.LEAVE, { flags: LEAVE_HANDOVER, candidates: [{ peer: OTHER, depth: 2, free: 3 }] }));
  l.step(200, 'other', message(Type.ACCEPT, { path: path('root', 'full', 'other'), depth: 2 }));
  l.ready();
  for (let t = 300; t <= 1300; t += 100) {
    if (t % 200 === 0) l.step(t, 'full', message(Type.CHUNK, { chunk: part(10 + t / 200) }));
    l.step(t, 'other', message(Type.PATH, { depth: 2 }));
    l.tick(t);
  }
  const rd = l.ready();
  assert.ok(sent(rd).includes('other:LEAVE'));
  const back = rd.messages.find((m) => m.msg.type === Type.ATTACH);
  assert.equal(back.to.id, 'full');
  assert.equal(back.msg.flags, ATTACH_WITHHELD);
  assert.equal(back.msg.lost, 'other');
  assert.equal(l.snapshot().parent, 'full');
  assert.equal(l.snapshot().depth, 2);
  assert.equal(l.snapshot().withheld, 1);
  // Banned.
  l.step(1400, 'other', message(Type.CHUNK, { chunk: part(30) }));
  assert.deepEqual(l.ready().deliver, []);
});

test('a handover the relay refuses: the parent gave the slot away, so the browser rejoins', () => {
  const l = under('root', 'full');
  l.step(100, 'full', message(Type.LEAVE, { flags: LEAVE_HANDOVER, candidates: [{ peer: OTHER, depth: 2, free: 3 }] }));
  l.ready();
  l.step(150, 'other', message(Type.REJECT, { reason: Reason.FULL }));
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['root:ATTACH']);
  assert.equal(rd.messages[0].msg.lost, 'full');
  assert.equal(rd.messages[0].msg.flags, 0);
});

test('a plain leave with a hint is still a rejoin, naming the parent lost', () => {
  const l = under('root', 'full');
  l.step(100, 'full', message(Type.LEAVE, { candidates: [{ peer: OTHER, depth: 2, free: 3 }] }));
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['other:ATTACH']);
  assert.equal(rd.messages[0].msg.flags, 0);
  assert.equal(rd.messages[0].msg.lost, 'full');
});

test('a relaying browser heartbeats what it holds and answers a receipt that is behind with its edge', () => {
  const r = new Leaf({ self: { id: 'me', addrs: ['/me'] }, root: { id: 'root', addrs: ['/root'] }, broadcast: 'root.x', config: { slots: 2 } });
  r.addCandidates(0, [{ id: 'full', addrs: ['/full'] }]);
  r.tick(0);
  r.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  for (let s = 0; s < 10; s++) r.step(10, 'full', message(Type.CHUNK, { chunk: part(s) }));
  r.step(20, 'kid', message(Type.ATTACH, { capacity: 1, free: 1 }));
  r.ready();
  r.step(300, 'full', message(Type.PATH, { depth: 1 }));
  r.tick(300);
  const beat = r.ready().messages.find((m) => m.to.id === 'kid' && m.msg.type === Type.PATH);
  assert.equal(beat.msg.seq, 10n);
  r.step(310, 'grandkid', message(Type.RECEIPT, { parent: 'kid', seq: 6n, count: 3, subtree: 1 }));
  r.step(320, 'grandkid', message(Type.RECEIPT, { parent: 'kid', seq: 8n, count: 3, subtree: 1 }));
  const rd = r.ready();
  assert.deepEqual(sent(rd), ['grandkid:EDGE']);
  assert.equal(rd.messages[0].msg.seq, 10n);
});
