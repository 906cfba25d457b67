// The 'init' data channel of a browser-to-browser WebRTC set-up, made safe
// from a race in js-libp2p's WebRTC transport (@libp2p/webrtc 6.0.33, the
// newest) that hung one such set-up in a few for the whole dial timeout.
//
// The initiator creates a data channel labelled 'init' before its offer
// (so that the connection has something to gather candidates for), and
// once the RTCPeerConnection is connected it waits for that channel to be
// open, closes it and waits for it to close. The recipient's muxer, made
// as soon as the recipient sees the connection connected, closes every
// channel labelled 'init' it is handed — the initiator's, the moment it
// arrives. When the recipient gets there first (its side connects first:
// it is the DTLS client; and the initiator's main thread may still be
// adding candidates), the close reaches the initiator before it looks:
// the channel is already 'closing' or 'closed', and the initiator waits
// for an 'open' event that never comes, until its dial is aborted. The
// last progress event of such a dial is webrtc:add-ice-candidate, though
// ICE and DTLS were done in well under a second (TestWebLinkPages'
// per-page dials; tests/browser/rtctrace.mjs shows the channel opened,
// then closed by the remote, before the initiator's check).
//
// Both sides are fixed here, in a subclass of RTCPeerConnection that
// js-libp2p is given in place of the browser's own (initChannelSafe):
//
//   - recipient: a remote channel labelled 'init' is closed by its
//     initiator, as libp2p's WebRTC spec has it; a close asked here only
//     starts a backstop timer (INIT_CLOSE_MS), in case the initiator
//     never closes it.
//   - initiator: once the 'init' channel has been open, it stays 'open'
//     to whoever asks (the channel has no other use than to be seen
//     open), and closing it when the remote already has fires 'close'
//     again, so a recipient that closes it early (another
//     implementation, or a page with an older bundle) cannot hang us.
//
// Nothing else about a connection changes: other channels, and every
// connection of the player's own (WHEP), are the browser's.
export const INIT_LABEL = 'init';
export const INIT_CLOSE_MS = 10000;

// initChannelSafe returns a subclass of Native (the browser's
// RTCPeerConnection) with the init channel made safe; timers are injected
// for tests.
export function initChannelSafe(Native, { setTimeout: later = globalThis.setTimeout } = {}) {
  return class extends Native {
    constructor(...args) {
      super(...args);
      // (Registered before any listener js-libp2p adds, so it runs first.)
      this.addEventListener('datachannel', (e) => {
        if (e.channel && e.channel.label === INIT_LABEL) leaveToInitiator(e.channel, later);
      });
    }

    createDataChannel(label, opts) {
      const ch = super.createDataChannel(label, opts);
      if (label === INIT_LABEL) latchOpen(ch, later);
      return ch;
    }
  };
}

// leaveToInitiator: the recipient's close of a remote 'init' channel waits
// INIT_CLOSE_MS for the initiator's.
function leaveToInitiator(ch, later) {
  const close = ch.close.bind(ch);
  let asked = false;
  ch.close = () => {
    if (asked) return;
    asked = true;
    later(close, INIT_CLOSE_MS);
  };
}

// latchOpen: the initiator's own 'init' channel reads 'open' once it has
// been, and a close of it once the remote closed it fires 'close' anew.
function latchOpen(ch, later) {
  const proto = Object.getPrototypeOf(ch);
  const desc = findGetter(proto, 'readyState');
  if (!desc) return;
  const native = () => desc.call(ch);
  let opened = native() === 'open';
  ch.addEventListener('open', () => { opened = true; });
  Object.defineProperty(ch, 'readyState', {
    configurable: true,
    get: () => (opened && (native() === 'closing' || native() === 'closed') ? 'open' : native()),
  });
  const close = ch.close.bind(ch);
  ch.close = () => {
    const was = native();
    close();
    // Closed already (by the remote): no 'close' event is coming, and the
    // caller is about to wait for one. (Later, so that it is waiting.)
    if (opened && was === 'closed') later(() => ch.dispatchEvent(new Event('close')), 0);
  };
}

function findGetter(proto, name) {
  for (let p = proto; p; p = Object.getPrototypeOf(p)) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d && d.get) return d.get;
  }
  return null;
}

// js-libp2p's WebRTC transport reads globalThis.RTCPeerConnection once,
// when its module is evaluated (@libp2p/webrtc's webrtc/index.browser).
// This module is peer.js's first import, so it is evaluated before
// js-libp2p's: it puts the safe class in place, and peer.js puts the
// browser's own back (restore) once every import has been evaluated, so
// only js-libp2p holds the subclass.
const Native = globalThis.RTCPeerConnection;
if (typeof Native === 'function') globalThis.RTCPeerConnection = initChannelSafe(Native);

export function restore() {
  if (typeof Native === 'function') globalThis.RTCPeerConnection = Native;
}
