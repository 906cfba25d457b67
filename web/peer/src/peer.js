// The browser light node's shell: js-libp2p over WebTransport and
// WebRTC-direct (to full nodes) and WebRTC (to other browsers) around the
// pure Leaf (leaf.js), as mesh/p2p is around mesh.Machine. The bundle
// (dist/peer.js) exposes start() as window.PeerscopePeer.start; the player
// page calls it in its p2p mode.
//
// Data flow: a full node's WebTransport address, or its WebRTC-direct one
// if that fails (api/peer) ─► dial ─►
// an outbound stream per peer on the tree's protocol ID, for what the leaf
// says (attach, status, pull, pong, leave) ─► the parent adopts us and
// opens its own stream to us ─► frames ─► decode ─► a chunk is verified
// (chunk.js) before the leaf sees it: a forged one bans its sender ─► the
// leaf delivers each sequence number once ─► InOrder ─► onChunk, in
// sequence, to the page's Media Source Extensions.
//
// rtc.js comes first: it hands js-libp2p, whose modules follow, an
// RTCPeerConnection whose browser-to-browser 'init' channel cannot hang a
// dial (see there); restoreRTC() below gives the page its own back.
import { restore as restoreRTC } from './rtc.js';
import { createLibp2p } from 'libp2p';
import { webRTC, webRTCDirect } from '@libp2p/webrtc';
import { webTransport } from '@libp2p/webtransport';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { WebRTC, WebRTCDirect, WebTransport } from '@multiformats/multiaddr-matcher';
import { Frames, decode, frame, Type } from './wire.js';
import { Verifier, broadcasterOf } from './chunk.js';
import { Leaf } from './leaf.js';
import { InOrder } from './inorder.js';

export { Leaf, InOrder, Verifier };

restoreRTC();

const TICK_MS = 50;
const MAX_TICK_WAIT_MS = 400;
// RACE is how many members a page asks to adopt it at once when it first
// joins: on a busy machine a set-up now and then takes a second more than
// the others (a WebRTC-direct handshake with a Go node, its own or the
// relay's on the way to a browser, that waits for Chromium's slow
// nomination: docs/ARCHITECTURE.md), and a page that waited on it alone
// waited that long for its first frame. (Browser-to-browser set-ups that
// hung outright were the 'init' channel race, rtc.js.)
const RACE = 3;
// RELEASE_MS is how long a race's loser keeps its stream, for the Leave
// that undoes an adoption to go out, before the shell closes it.
const RELEASE_MS = 1000;
// How long a dial may take: to another browser (a WebRTC set-up through a
// relay), counted from when the relay's connection is there (its
// signalling stream opens), once and then afresh; to a node (WebTransport,
// or WebRTC-direct), which is also what reaching the relay may take.
const BROWSER_DIAL_MS = [1500, 2000];
// How long a retry waits for the attempt before it to leave the dial queue.
const RETRY_WAIT_MS = 500;
const NODE_DIAL_MS = 5000;
// A node is dialled over WebTransport first, when it has such an address
// and the browser has WebTransport: a QUIC handshake, with no ICE (a
// WebRTC-direct one now and then waited a second or two for Chromium's
// slow nomination: docs/ARCHITECTURE.md). One that has not come in
// WEBTRANSPORT_DIAL_MS (on loopback it takes tens of ms), or fails (UDP
// blocked, an old browser), gives way to WebRTC-direct.
const WEBTRANSPORT_DIAL_MS = 1500;

// dialable keeps the addresses a browser can dial: a node's WebTransport
// or WebRTC-direct (with certhash), or another browser's WebRTC through a
// circuit relay (…/p2p/<relay>/p2p-circuit/webrtc), which signals the
// connection.
export function dialable(addrs) {
  return (addrs || []).filter((a) => {
    try {
      const m = multiaddr(a);
      return WebRTCDirect.exactMatch(m) || WebRTC.exactMatch(m) || isWebTransport(m);
    } catch { return false; }
  });
}

// isWebTransport says whether m is a node's WebTransport address with the
// certificate hashes the browser checks instead of a CA.
function isWebTransport(m) {
  return WebTransport.exactMatch(m) && m.toString().includes('/certhash/');
}

// nodeDials orders the dials to a full node: its WebTransport addresses
// first, bounded by WEBTRANSPORT_DIAL_MS, then its WebRTC-direct ones;
// either alone, with the whole NODE_DIAL_MS. (A browser without
// WebTransport skips it.)
export function nodeDials(addrs, hasWebTransport = typeof globalThis.WebTransport === 'function') {
  const wt = hasWebTransport ? addrs.filter((a) => isWebTransport(multiaddr(a.toString()))) : [];
  const rest = addrs.filter((a) => !isWebTransport(multiaddr(a.toString())));
  if (!wt.length) return [{ addrs: rest, ms: NODE_DIAL_MS, via: 'node' }];
  if (!rest.length) return [{ addrs: wt, ms: NODE_DIAL_MS, via: 'node-wt' }];
  return [{ addrs: wt, ms: WEBTRANSPORT_DIAL_MS, via: 'node-wt' }, { addrs: rest, ms: NODE_DIAL_MS, via: 'node' }];
}

function withPeer(addr, id) {
  return addr.endsWith(`/p2p/${id}`) ? addr : `${addr}/p2p/${id}`;
}

// unlimited is an open connection that can carry the stream: not a relayed
// one (a circuit's data is limited; it carries a browser's signalling).
function unlimited(c) {
  return c.status === 'open' && c.limits == null;
}

// toBrowser says whether a connection is to another browser: WebRTC set up
// through a relay, or the relayed signalling connection itself.
function toBrowser(c) {
  const a = c.remoteAddr.toString();
  return a.includes('/p2p-circuit') || (a.includes('/webrtc') && !a.includes('/webrtc-direct'));
}

function bytesOf(data) {
  return data instanceof Uint8Array ? data : data.subarray();
}

// start joins the broadcast's tree. opts: broadcast, protocol (the tree's
// stream protocol ID), addrs (where to enter the tree: multiaddrs of the
// broadcaster and of full nodes with room, each ending in /p2p/<its ID>;
// the full nodes are asked first, up to RACE at once),
// slots (children this browser feeds; 0, the default: a leaf),
// iceServers (for browser-to-browser WebRTC; default none: host
// candidates only), onChunk(chunk) in sequence, onEvent(event), log(...).
//
// A page with slots reserves a slot on the relay of the node it dials
// (a small circuit relay every node runs for signalling): its address
// …/p2p/<node>/p2p-circuit/webrtc/p2p/<page> goes in its attach, the tree
// passes it on in redirects, and another page dials it: the relay carries
// the WebRTC offer and answer, then the two browsers talk directly.
export async function start(opts) {
  const log = opts.log || (() => {});
  const now = () => performance.now();
  // Where a page's startup goes, on its own clock (performance.now(), from
  // the navigation): start() called, js-libp2p started, the first attach
  // accepted, the first media chunk delivered; and every dial the shell
  // made (peer, browser or node, how long, how it ended).
  const times = { start: Math.round(now()) };
  const dials = [];
  const verifier = new Verifier(opts.broadcast);
  const slots = opts.slots || 0;
  const rtcConfiguration = { iceServers: opts.iceServers || [] };
  const node = await createLibp2p({
    addresses: { listen: slots > 0 ? ['/p2p-circuit', '/webrtc'] : [] },
    transports: [webTransport(), webRTCDirect({ rtcConfiguration }), webRTC({ rtcConfiguration }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    // A relayed connection (the signalling path to another browser) is
    // upgraded like a raw one: Noise, then yamux.
    streamMuxers: [yamux()],
    // identify tells the relay transport which peers relay.
    services: { identify: identify() },
    // Loopback and LAN addresses are what tests and home networks use;
    // js-libp2p refuses them in browsers unless told otherwise.
    connectionGater: { denyDialMultiaddr: async () => false },
    connectionManager: { maxConnections: 16 },
  });
  times.libp2p = Math.round(now());
  const selfID = node.peerId.toString();
  const connsTo = (id) => node.getConnections().filter((c) => c.remotePeer.toString() === id);
  const rootID = broadcasterOf(opts.broadcast);
  // The entries (api/peer): the broadcaster, and members of the tree with
  // room that its listing names, each address ending in /p2p/<its ID>.
  // The full nodes among them, and the relays that a browser entry is
  // reached through, may welcome this page's first join (leaf.js).
  const entries = new Map(); // peer ID → addrs
  const welcomers = new Set();
  const entry = (id, addr) => {
    if (!entries.has(id)) entries.set(id, []);
    if (!entries.get(id).includes(addr)) entries.get(id).push(addr);
  };
  for (const a of dialable(opts.addrs)) {
    const m = /^(.*)\/p2p\/([^/]+)$/.exec(a);
    if (!m) continue; // (an address that does not name its peer)
    entry(m[2], m[1]);
    const relay = /^(.*)\/p2p\/([^/]+)\/p2p-circuit\/webrtc$/.exec(m[1]);
    if (relay && dialable([relay[1]]).length) { entry(relay[2], relay[1]); welcomers.add(relay[2]); }
    if (!relay) welcomers.add(m[2]);
  }
  const writers = new Map(); // peer ID → {stream|null, queue, failed}
  const leaf = new Leaf({
    self: { id: selfID, addrs: [] },
    root: { id: rootID, addrs: [] },
    broadcast: opts.broadcast,
    // A first join asks up to RACE members at once (leaf.js, race).
    config: { race: RACE, ...opts.config, slots },
    // A peer is reachable if we hold a connection to it or can dial it.
    usable: (info) => dialable(info.addrs).length > 0 || connsTo(info.id).some(unlimited),
    connected: (id) => { const w = writers.get(id); return !!(w && w.stream); },
  });
  const order = new InOrder({ wait: opts.gapWait || 2000 });
  const refused = []; // seqs of chunks refused, for the page and tests
  let stopped = false;
  // What the light node costs the page, measured with performance.now():
  // main-thread time spent decoding frames, stepping the leaf and sending
  // what it says (forwarding to children included), and ticking; the wall
  // time of the signature checks (WebCrypto works off the main thread);
  // and the long tasks the browser reported (any script's, over 50 ms).
  const cpu = { decodeMs: 0, stepMs: 0, tickMs: 0, verifyWaitMs: 0, longTaskMs: 0, since: now() };
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) cpu.longTaskMs += e.duration; })
      .observe({ type: 'longtask', buffered: true });
  } catch { /* no long-task timing in this browser */ }
  const bytesFrom = {}; // peer ID → bytes of frames received from it
  const bytesTo = {}; // peer ID → bytes of frames sent to it

  function deliver(c) {
    if (times.firstChunk === undefined && !(c.flags & 2)) times.firstChunk = Math.round(now());
    for (const x of order.push(now(), c)) if (!x.gap) opts.onChunk(x); else log('peer: gave a hole up');
  }

  function drain() {
    const rd = leaf.ready();
    for (const { to, msg } of rd.messages) write(to, msg);
    for (const c of rd.deliver) deliver(c);
    for (const e of rd.events) {
      if (e.type === 'attached' && times.attached === undefined) times.attached = Math.round(now());
      if (e.type === 'race-lost') release(e.peer);
      log('peer:', e.type, e.peer ? e.peer.slice(-8) : '', e.why || '', e.depth === undefined ? '' : `depth ${e.depth}`);
      if (opts.onEvent) opts.onEvent(e);
    }
  }

  // write sends msg to a peer on our one outbound stream to it, opened on
  // first use (dialling its WebTransport or WebRTC-direct addresses if not
  // connected).
  function write(to, msg) {
    let w = writers.get(to.id);
    if (!w) {
      w = { stream: null, queue: [], failed: false, abort: new AbortController() };
      writers.set(to.id, w);
      open(to, w);
    }
    const f = frame(msg);
    if (w.stream) send(to.id, w, f); else w.queue.push(f);
  }

  async function open(to, w) {
    try {
      const addrs = dialable(to.addrs).map((a) => multiaddr(withPeer(a, to.id)));
      // (A relayed connection to a browser is its signalling path, not
      // one to open the tree's stream on: its data is limited.)
      const connected = node.getConnections().find((c) => c.remotePeer.toString() === to.id && unlimited(c));
      const target = connected ? connected.remotePeer : addrs;
      if (!connected && !addrs.length) throw new Error('no address a browser can dial');
      // Another browser, through a circuit: a WebRTC set-up that has not
      // come BROWSER_DIAL_MS after its signalling began has hung (on
      // loopback it takes well under one), and is tried afresh once. The
      // time to reach the relay before that is a node's dial (a
      // WebRTC-direct handshake, which on a loaded machine now and then
      // takes over a second): counting it in cut off set-ups that were
      // about to come. (The dial's last progress event is kept, to see
      // where one hung.) A node: WebTransport first, then WebRTC-direct
      // (nodeDials).
      const browser = !connected && addrs.every((a) => a.toString().includes('/p2p-circuit'));
      const attempts = connected ? [{ target, ms: NODE_DIAL_MS, via: 'open' }]
        : browser ? BROWSER_DIAL_MS.map((ms) => ({ target, ms, via: 'browser' }))
          : nodeDials(addrs).map((p) => ({ target: p.addrs, ms: p.ms, via: p.via }));
      let stream;
      for (const [i, { target, ms, via }] of attempts.entries()) {
        const d = { peer: to.id.slice(-8), via, at: Math.round(now()), stage: '' };
        dials.push(d);
        if (dials.length > 20) dials.shift();
        const timeout = new AbortController();
        const expire = () => timeout.abort(new DOMException('dial timed out', 'TimeoutError'));
        let timer = setTimeout(expire, browser ? NODE_DIAL_MS + ms : ms);
        const onProgress = (e) => {
          d.stage = e.type;
          if (browser && e.type === 'webrtc:open-signaling-stream') {
            d.signalling = Math.round(now()) - d.at;
            clearTimeout(timer);
            timer = setTimeout(expire, ms);
          }
        };
        try {
          const signal = AbortSignal.any([w.abort.signal, timeout.signal]);
          stream = await node.dialProtocol(target, opts.protocol, { signal, runOnLimitedConnection: true, onProgress });
        } catch (e) {
          if (w.abort.signal.aborted || i === attempts.length - 1) throw e;
          log('peer: open', to.id.slice(-8), 'via', via, e.message, 'at', d.stage, '- again');
          // The hung attempt is aborted, but js-libp2p's dial queue drops
          // it only once its transport has given up; a dial made before
          // that joins it instead of starting afresh. So wait, a little,
          // for it to go.
          const until = now() + RETRY_WAIT_MS;
          while (now() < until && node.getDialQueue().some((p) => p.peerId && p.peerId.toString() === to.id)) {
            await new Promise((r) => setTimeout(r, 20));
          }
        } finally {
          clearTimeout(timer);
          d.ms = Math.round(now()) - d.at;
          d.ok = !!stream;
        }
        if (stream) break;
      }
      if (writers.get(to.id) !== w || stopped) { stream.abort(new Error('closed')); return; }
      w.stream = stream;
      stream.addEventListener('close', () => { if (writers.get(to.id) === w) gone(to.id, w); });
      for (const f of w.queue.splice(0)) send(to.id, w, f);
      leaf.opened(now(), to.id);
      drain();
    } catch (e) {
      log('peer: open', to.id.slice(-8), e.message);
      gone(to.id, w);
    }
  }

  // release lets a race's loser go. Its stream not yet open, the loser has
  // heard nothing (the attach and the Leave after it wait in the queue):
  // the dial is aborted and the queue dropped. Open, the Leave goes out,
  // and a moment later the stream is closed. Either way a connection to
  // another browser that the leaf has no use for is then closed, so a race
  // leaves no RTCPeerConnection behind (a full node's is kept: it may hold
  // the relay reservation others reach this page through).
  function release(id) {
    const w = writers.get(id);
    if (w && !w.stream) {
      writers.delete(id);
      w.abort.abort(new Error('lost the race'));
    }
    setTimeout(() => {
      if (stopped || leaf.uses(id)) return;
      const w = writers.get(id);
      if (w && w.stream) {
        writers.delete(id);
        Promise.resolve().then(() => w.stream.close()).catch(() => {});
      }
      const conns = connsTo(id);
      if (conns.length && conns.every(toBrowser)) node.hangUp(conns[0].remotePeer).catch(() => {});
    }, RELEASE_MS);
  }

  function send(id, w, f) {
    bytesTo[id] = (bytesTo[id] || 0) + f.length;
    try { w.stream.send(f); } catch (e) { log('peer: write', id.slice(-8), e.message); gone(id, w); }
  }

  function gone(id, w) {
    if (writers.get(id) !== w) return;
    writers.delete(id);
    if (w.stream) w.stream.abort(new Error('gone'));
    if (stopped) return;
    leaf.peerDown(now(), id);
    drain();
  }

  // Inbound: one queue for every stream, so the leaf sees messages in the
  // order they arrived, each chunk verified first.
  let queue = Promise.resolve();
  let pending = 0; // messages received and not yet stepped (verifying, or queued behind one)
  function inbound(from, m) {
    pending++;
    queue = queue.then(async () => {
      if (stopped) return;
      if (m.type === Type.CHUNK && m.chunk) {
        const v0 = now();
        const why = await verifier.verify(m.chunk);
        cpu.verifyWaitMs += now() - v0;
        if (why) {
          refused.push(Number(m.chunk.seq));
          log('peer: refused chunk', String(m.chunk.seq), why, 'from', from.slice(-8));
          leaf.forged(now(), from, why);
          drain();
          return;
        }
      } else if (m.type === Type.CHUNK) {
        return;
      }
      const t = now();
      leaf.step(t, from, m);
      drain();
      cpu.stepMs += now() - t;
    }).catch((e) => {
      // A bug must not stop every later message: the chain goes on.
      log('peer: step', e && e.message);
    }).finally(() => { pending--; });
  }

  await node.handle(opts.protocol, (stream, conn) => {
    const from = conn.remotePeer.toString();
    const frames = new Frames();
    stream.addEventListener('message', (e) => {
      const t = now();
      try {
        const data = bytesOf(e.data);
        bytesFrom[from] = (bytesFrom[from] || 0) + data.length;
        for (const b of frames.push(data)) inbound(from, decode(b));
        cpu.decodeMs += now() - t;
      } catch (err) {
        log('peer: bad frame from', from.slice(-8), err.message);
        stream.abort(err);
        leaf.peerDown(now(), from);
        drain();
      }
    });
  }, { maxInboundStreams: 8, runOnLimitedConnection: true });

  // Our own address for other browsers: a circuit through a relay, then
  // WebRTC. When it changes the leaf tells its parent and children.
  let own = '';
  // (Without the trailing /p2p/<us>, as the tree carries addresses.)
  const ownAddrs = () => dialable(node.getMultiaddrs().map((a) => a.toString()))
    .filter((a) => a.includes('/p2p-circuit/webrtc'))
    .map((a) => (a.endsWith(`/p2p/${selfID}`) ? a.slice(0, -`/p2p/${selfID}`.length) : a));
  node.addEventListener('self:peer:update', () => {
    if (!slots || stopped) return;
    const addrs = ownAddrs();
    if (addrs.join() === own) return;
    own = addrs.join();
    log('peer: reachable for browsers at', own || 'nothing');
    leaf.setAddrs(now(), addrs);
    drain();
  });

  node.addEventListener('peer:disconnect', (e) => {
    const id = e.detail.toString();
    const w = writers.get(id);
    if (w) gone(id, w); else { leaf.peerDown(now(), id); drain(); }
  });

  leaf.addCandidates(now(), [...entries].map(([id, addrs]) => ({ id, addrs, welcome: welcomers.has(id) })));
  leaf.tick(now());
  drain();
  // The leaf ticks after its inbox is drained, as mesh/p2p's shell does
  // before each Tick: a page whose main thread was held up (a busy
  // machine, a long task) finds its timer and the parent's frames waiting
  // together, and a tick taken first would judge the parent silent though
  // its frames are there. So a timer that fires late is skipped (the
  // frames' tasks run before the next), and a tick waits, up to
  // MAX_TICK_WAIT_MS, for the messages being verified.
  let lastTimer = now();
  let waitingSince = 0;
  const timer = setInterval(() => {
    if (stopped) return;
    const t = now();
    const late = t - lastTimer > 4 * TICK_MS;
    lastTimer = t;
    if (late) { waitingSince = t; return; }
    if (pending > 0) {
      if (!waitingSince) waitingSince = t;
      if (t - waitingSince < MAX_TICK_WAIT_MS) return;
    }
    waitingSince = 0;
    leaf.tick(t);
    drain();
    for (const x of order.poll(now())) if (!x.gap) opts.onChunk(x);
    cpu.tickMs += now() - t;
  }, TICK_MS);

  // parentVia says what feeds us, from our own connection to the parent:
  // 'node' over WebTransport or WebRTC-direct (a full node), 'browser'
  // over WebRTC set up through a relay (another page), '' when not
  // attached; parentTransport, which of those it is.
  function parentVia(id) {
    if (!id) return '';
    // (A browser's address is a circuit through a node's WebTransport or
    // WebRTC-direct address: what matters is what comes after the circuit.)
    const addrs = node.getConnections().filter((c) => c.remotePeer.toString() === id && c.status === 'open')
      .map((c) => c.remoteAddr.toString().replace(/\/p2p\/[^/]+$/, ''));
    if (addrs.some((a) => a.endsWith('/p2p-circuit/webrtc') || a.endsWith('/webrtc'))) return 'browser';
    if (addrs.some((a) => a.includes('/p2p-circuit'))) return 'relayed';
    if (addrs.some((a) => a.includes('/webrtc-direct') || a.includes('/webtransport'))) return 'node';
    return addrs.length ? 'other' : '';
  }
  function parentTransport(id) {
    if (!id) return '';
    const addrs = node.getConnections().filter((c) => c.remotePeer.toString() === id && c.status === 'open')
      .map((c) => c.remoteAddr.toString());
    if (addrs.some((a) => a.includes('/p2p-circuit'))) return 'webrtc';
    if (addrs.some((a) => a.includes('/webtransport'))) return 'webtransport';
    if (addrs.some((a) => a.includes('/webrtc-direct'))) return 'webrtc-direct';
    return addrs.length ? 'other' : '';
  }

  return {
    id: selfID,
    stats: () => {
      const snap = leaf.snapshot();
      const elapsed = now() - cpu.since;
      return {
        ...snap, times: { ...times }, dials: dials.map((d) => ({ ...d })), refused: [...refused], skipped: order.skipped, verifier: verifier.impl,
        slots, reachable: own, parentVia: parentVia(snap.parent), parentTransport: parentTransport(snap.parent),
        bytesFrom: { ...bytesFrom }, bytesTo: { ...bytesTo },
        cpu: { ...cpu, busyMs: cpu.decodeMs + cpu.stepMs + cpu.tickMs, elapsedMs: elapsed },
      };
    },
    async stop() {
      if (stopped) return;
      leaf.leave();
      drain();
      stopped = true;
      clearInterval(timer);
      await new Promise((r) => setTimeout(r, 100));
      await node.stop();
    },
  };
}
