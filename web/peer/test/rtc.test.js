// rtc.js: the browser-to-browser 'init' channel race. The browser's
// RTCPeerConnection and RTCDataChannel are stood in for by small
// EventTarget classes with the same readyState life cycle (a getter on the
// prototype, 'connecting' → 'open' → 'closing' → 'closed', events as tasks);
// the initiator's steps are js-libp2p's (@libp2p/webrtc 6.0.33,
// private-to-private/initiate-connection.ts): once connected, wait for the
// 'init' channel to be open if it is not, close it, wait for 'close'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initChannelSafe, INIT_CLOSE_MS } from '../src/rtc.js';

class FakeChannel extends EventTarget {
  constructor(label) {
    super();
    this.label = label;
    this._state = 'connecting';
  }

  get readyState() { return this._state; }

  // open and remoteClose are what the network does.
  open() { this._state = 'open'; setTimeout(() => this.dispatchEvent(new Event('open')), 0); }
  remoteClose() {
    if (this._state === 'closed') return;
    this._state = 'closed';
    setTimeout(() => this.dispatchEvent(new Event('close')), 0);
  }

  close() {
    if (this._state === 'closing' || this._state === 'closed') return;
    this._state = 'closing';
    setTimeout(() => { this._state = 'closed'; this.dispatchEvent(new Event('close')); }, 0);
  }
}

class FakePC extends EventTarget {
  createDataChannel(label) { return new FakeChannel(label); }
  // remoteChannel is a channel the remote opened arriving.
  remoteChannel(label) {
    const ch = new FakeChannel(label);
    ch._state = 'open';
    this.dispatchEvent(Object.assign(new Event('datachannel'), { channel: ch }));
    return ch;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

function once(target, name) {
  return new Promise((r) => target.addEventListener(name, r, { once: true }));
}

// js-libp2p's initiator after 'connected', with a deadline: it says
// whether it got through.
async function initiatorFinishes(ch, ms = 200) {
  const steps = (async () => {
    if (ch.readyState !== 'open') await once(ch, 'open');
    ch.close();
    await once(ch, 'close');
    return true;
  })();
  return Promise.race([steps, new Promise((r) => setTimeout(() => r(false), ms))]);
}

test('the race: the remote closes init before the initiator looks, and the bare initiator hangs', async () => {
  const ch = new FakePC().createDataChannel('init');
  ch.open();
  await tick();
  ch.remoteClose(); // the recipient's muxer closed it
  await tick();
  assert.equal(await initiatorFinishes(ch), false);
});

test('initiator: an init channel closed by the remote after it opened does not hang the set-up', async () => {
  const PC = initChannelSafe(FakePC);
  const ch = new PC().createDataChannel('init');
  ch.open();
  await tick();
  ch.remoteClose();
  await tick();
  assert.equal(ch.readyState, 'open'); // it has been
  assert.equal(await initiatorFinishes(ch), true);
});

test('initiator: the usual order (open, then closed by us) is unchanged', async () => {
  const PC = initChannelSafe(FakePC);
  const ch = new PC().createDataChannel('init');
  assert.equal(ch.readyState, 'connecting');
  setTimeout(() => ch.open(), 10);
  let closes = 0;
  ch.addEventListener('close', () => closes++);
  assert.equal(await initiatorFinishes(ch), true);
  await tick();
  assert.equal(closes, 1);
  assert.equal(ch.readyState, 'open'); // (latched: it has been open; nothing reads it after)
});

test('initiator: an init channel that never opened still waits (a set-up that failed is not made to succeed)', async () => {
  const PC = initChannelSafe(FakePC);
  const ch = new PC().createDataChannel('init');
  ch.remoteClose();
  await tick();
  assert.equal(ch.readyState, 'closed');
  assert.equal(await initiatorFinishes(ch, 50), false);
});

test('recipient: a remote init channel is left to its initiator; a close asked here waits INIT_CLOSE_MS', async () => {
  const timers = [];
  const PC = initChannelSafe(FakePC, { setTimeout: (f, ms) => timers.push({ f, ms }) });
  const pc = new PC();
  // js-libp2p's muxer closes every remote 'init' channel it is handed.
  pc.addEventListener('datachannel', (e) => { if (e.channel.label === 'init') e.channel.close(); });
  const init = pc.remoteChannel('init');
  await tick();
  assert.equal(init.readyState, 'open');
  init.close(); // asked again: one timer
  assert.deepEqual(timers.map((t) => t.ms), [INIT_CLOSE_MS]);
  timers[0].f();
  await tick();
  assert.equal(init.readyState, 'closed');
});

test('other channels are the browser own', async () => {
  const timers = [];
  const PC = initChannelSafe(FakePC, { setTimeout: (f, ms) => timers.push({ f, ms }) });
  const pc = new PC();
  const remote = pc.remoteChannel('');
  remote.close();
  await tick();
  assert.equal(remote.readyState, 'closed');
  const mine = pc.createDataChannel('');
  mine.open();
  await tick();
  mine.remoteClose();
  await tick();
  assert.equal(mine.readyState, 'closed');
  assert.equal(timers.length, 0);
});
