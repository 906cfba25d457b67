// Reordering for the player: from a keyframe, in sequence, holes given up
// after the wait, inits just before the part they apply to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InOrder } from '../src/inorder.js';
import { FLAG_INIT, FLAG_KEYFRAME, FLAG_END } from '../src/chunk.js';

const c = (seq, flags = 0) => ({ seq: BigInt(seq), flags });
const names = (out) => out.map((x) => (x.gap ? 'gap' : `${x.flags & FLAG_INIT ? 'init' : ''}${x.seq}`));

test('starts at the first keyframe with an init, in order', () => {
  const o = new InOrder({ wait: 1000 });
  assert.deepEqual(names(o.push(0, c(9))), []);
  assert.deepEqual(names(o.push(0, c(11))), []);
  assert.deepEqual(names(o.push(0, c(10, FLAG_KEYFRAME))), []); // no init yet
  assert.deepEqual(names(o.push(0, c(10, FLAG_INIT))), ['init10', '10', '11']);
  assert.deepEqual(names(o.push(0, c(13))), []);
  assert.deepEqual(names(o.push(0, c(12))), ['12', '13']);
});

test('a hole is waited for, then given up at the next keyframe', () => {
  const o = new InOrder({ wait: 1000 });
  o.push(0, c(1, FLAG_INIT));
  assert.deepEqual(names(o.push(0, c(1, FLAG_KEYFRAME))), ['init1', '1']);
  o.push(100, c(3));
  o.push(100, c(4, FLAG_KEYFRAME));
  assert.deepEqual(names(o.poll(900)), []);
  assert.deepEqual(names(o.poll(1200)), ['gap', '4']);
  assert.equal(o.skipped, 1);
  assert.deepEqual(names(o.push(1300, c(2))), []); // too late
});

test('a new init comes out before its part; the end ends it', () => {
  const o = new InOrder();
  o.push(0, c(1, FLAG_INIT));
  o.push(0, c(1, FLAG_KEYFRAME));
  assert.deepEqual(names(o.push(0, c(3, FLAG_INIT))), []);
  assert.deepEqual(names(o.push(0, c(2))), ['2']);
  assert.deepEqual(names(o.push(0, c(3, FLAG_KEYFRAME | FLAG_END))), ['init3', '3']);
});
