// A first join's welcome (mesh/welcome.go): the browser asks the full nodes
// it was given as welcomers first, its attaches flagged ATTACH_WELCOME; a
// welcomer's accept (ACCEPT_WELCOME) is followed by a handover, made before
// break; when that handover fails the browser asks the welcomer again
// rather than rejoining elsewhere naming it as lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Leaf } from '../src/leaf.js';
import { message, Type, Reason } from '../src/wire.js';
import { ATTACH_IMPROVE, ATTACH_WELCOME, ACCEPT_WELCOME, LEAVE_HANDOVER } from '../src/trust.js';

const ROOT = { id: 'root', addrs: ['r'] };
const path = (...ids) => ids.map((id) => ({ id, addrs: [id[0]] }));
const sent = (rd) => rd.messages.map(({ to, msg }) => `${to.id}:${Object.keys(Type).find((k) => Type[k] === msg.type)}`);

// entered returns a browser given two browser entries and the full node
// they are reached through (a welcomer), as peer.js reads api/peer.
function entered() {
  const l = new Leaf({ self: { id: 'me', addrs: [] }, root: ROOT, broadcast: 'root.x', config: { race: 3 } });
  l.addCandidates(0, [{ id: 'pageA', addrs: ['a'] }, { id: 'pageB', addrs: ['b'] }, { id: 'full', addrs: ['f'], welcome: true }]);
  return l;
}

test('a first join asks the welcomer first, beside its race, every attach flagged welcome', () => {
  const l = entered();
  l.tick(0);
  const rd = l.ready();
  assert.deepEqual(sent(rd), ['full:ATTACH', 'pageA:ATTACH', 'pageB:ATTACH']);
  for (const { msg } of rd.messages) assert.equal(msg.flags, ATTACH_WELCOME);
});

test('welcomed, handed over, the move refused: the browser asks its welcomer again, naming nobody lost', () => {
  const l = entered();
  l.tick(0);
  l.ready();
  l.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1, flags: ACCEPT_WELCOME }));
  let rd = l.ready();
  assert.ok(sent(rd).includes('pageA:LEAVE') && sent(rd).includes('pageB:LEAVE'), 'the race is won: the others are left');
  assert.equal(l.snapshot().welcomed, 1);
  l.step(1000, 'full', message(Type.LEAVE, { flags: LEAVE_HANDOVER, candidates: [{ peer: { id: 'pageA', addrs: ['a'] }, depth: 2, free: 2 }] }));
  rd = l.ready();
  assert.deepEqual(sent(rd), ['pageA:ATTACH']);
  assert.equal(rd.messages[0].msg.flags, ATTACH_IMPROVE, 'a move: not a first join any more');
  l.step(1100, 'pageA', message(Type.REJECT, { reason: Reason.FULL }));
  rd = l.ready();
  assert.deepEqual(sent(rd), ['full:ATTACH']);
  assert.equal(rd.messages[0].msg.lost, '');
  assert.equal(rd.messages[0].msg.flags, 0);
  assert.equal(l.snapshot().parent, 'full', 'still fed by the welcomer');
});

test('an accept without the welcome flag keeps the old rule: a failed handover is a rejoin', () => {
  const l = entered();
  l.tick(0);
  l.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  l.step(1000, 'full', message(Type.LEAVE, { flags: LEAVE_HANDOVER, candidates: [{ peer: { id: 'pageA', addrs: ['a'] }, depth: 2, free: 2 }] }));
  l.ready();
  l.step(1100, 'pageA', message(Type.REJECT, { reason: Reason.FULL }));
  const a = l.ready().messages.find((m) => m.msg.type === Type.ATTACH);
  assert.equal(a.msg.lost, 'full');
});

test('a rejoin asks for no welcome', () => {
  const l = entered();
  l.tick(0);
  l.step(10, 'full', message(Type.ACCEPT, { path: path('root', 'full'), depth: 1 }));
  l.ready();
  l.step(100, 'full', message(Type.LEAVE, {}));
  const rd = l.ready();
  const attaches = rd.messages.filter((m) => m.msg.type === Type.ATTACH);
  assert.ok(attaches.length > 0);
  for (const { msg } of attaches) assert.equal(msg.flags & ATTACH_WELCOME, 0);
});
