// One browser's part in the tree's protocol as a pure state machine, in the
// manner of mesh.Machine: no timers, no sockets, no clock reads. Its inputs
// are step(now, from, msg) for a message a peer sent (a chunk only once the
// shell has verified it; forged(now, from) when it failed), tick(now),
// addCandidates, peerDown and leave; its outputs collect until ready()
// takes them: messages to send, chunks to deliver (each sequence number
// once, in any order) and events. Times are milliseconds.
//
// With no child slots (the default) it is a leaf. It attaches (its slots
// as capacity, asking for the live edge, or for 1 + the first sequence number it lacks when it comes
// back), follows redirects, takes the accept's ancestor path, keeps its
// parent with a status every StatusKeepalive, takes the parent's path
// messages as heartbeats, pulls holes that stay open for GapTimeout (from
// the parent, every other time from an ancestor that is not the
// broadcaster), and, when the parent goes silent, leaves, says so, or sends
// a chunk that fails its signature, attaches to the hints it was given,
// then to its ancestors nearest first, then to whoever else it knows. On
// its first join it may ask several members at once (config.race) and
// keep the first that accepts, leaving the others. It
// answers pings. At depth 2 or more it sends its grandparent receipts, takes
// its parent for withholding when the edge it hears and the parent's
// heartbeats say so, and moves make before break when its parent hands it
// over to a bigger relay (trust.js: /peerscope/mesh/1.2.0's trust). With
// slots it is also a parent (children.js): it adopts, backfills and feeds
// children, heartbeats them and takes their statuses; without, an attach is
// refused (full). docs/ARCHITECTURE.md, "The browser light node", is the
// protocol written down.
import { Type, Reason, message } from './wire.js';
import { FLAG_INIT } from './chunk.js';
import { children } from './children.js';
import { trust, ATTACH_WITHHELD, ATTACH_WELCOME, ACCEPT_WELCOME, LEAVE_HANDOVER } from './trust.js';

// MAX_WELCOMERS: how many full nodes a first join asks for a welcome
// besides its race (a node's WebTransport dial is cheap; the relays named
// in the entries' circuits must be reached anyway).
const MAX_WELCOMERS = 2;

// DEFAULTS are mesh.DefaultConfig's timings, which the parent holds its
// children to (its ChildTimeout is 2 s).
export const DEFAULTS = {
  slots: 0, // children this browser feeds
  window: 150, // chunks remembered, as the Go nodes
  statusInterval: 250,
  statusKeepalive: 600,
  heartbeat: 250,
  childTimeout: 2000,
  parentTimeout: 800,
  attachTimeout: 1000,
  gapTimeout: 400,
  banDuration: 120000,
  maxPull: 64,
  chunkInterval: 200, // the stream's chunk duration, as mesh.DefaultConfig
  receiptInterval: 1000,
  withholdTimeout: 1000,
  // How long the shell may take to open a stream to a peer it is not
  // connected to (a WebRTC-direct or browser-to-browser handshake; its
  // own dial timeout is 5 s): an attach's AttachTimeout runs from when the
  // stream opened (opened), not from when it was asked for.
  dialTimeout: 5000,
  // How many members a detached browser asks to adopt it at once: the
  // first to accept is its parent, the others are left (a Leave undoes an
  // adoption they made meanwhile). One set-up that hangs (a browser's
  // WebRTC through a relay can take seconds on a busy machine) then costs
  // nothing while another answers. 1: one at a time.
  race: 1,
};

export const NO_DEPTH = 65536;

export class Leaf {
  // self and root are {id, addrs}; usable(info) says whether the shell can
  // reach a peer (a browser dials only WebRTC-direct addresses);
  // connected(id) whether a message to it goes out at once (the shell's
  // stream to it is open), else it waits for a dial.
  constructor({ self, root, broadcast, config = {}, usable = () => true, connected = () => true, rand = Math.random }) {
    this.cfg = { ...DEFAULTS, ...config };
    this.self = self;
    this.root = root;
    this.broadcast = broadcast;
    this.usable = usable;
    this.connected = connected;
    this.rand = rand;
    this.state = 'detached'; // detached | attaching | attached | left
    this.members = new Map(); // id → {info, depth, free, coolUntil, bannedUntil}
    this.order = [];
    this.parent = null; // {id, addrs}
    this.path = []; // root..parent
    this.parentHeard = 0;
    this.parentOutSince = 0;
    this.attachTo = null;
    this.attachDeadline = 0;
    this.rivals = new Map(); // id → deadline: others asked at the same time as attachTo (a race)
    this.hints = [];
    this.lostParent = '';
    this.lostAt = 0;
    this.lastStatus = 0;
    this.statusDirty = false;
    this.kids = []; // children: {info, capacity, free, subtree, room, heardAt, sentAt}
    // The window: ring[seq % window] holds the chunk seq when present.
    this.ring = new Array(this.cfg.window).fill(null);
    this.initChunk = null;
    this.haveAny = false;
    this.highest = 0n;
    this.next = 0n;
    this.lastInit = -1n;
    this.gapSince = 0;
    this.pulledAt = 0;
    this.pulls = 0;
    // 1.2.0's trust (trust.js): receipts sent, the edge heard, what the
    // parent's heartbeats say it holds, a move under way.
    this.newAt = 0; // when the highest sequence number last grew
    this.chunksSince = 0; // new chunks from the parent since the last receipt
    this.receiptAt = 0;
    this.receiptTo = '';
    this.edge = 0n;
    this.edgeAt = 0;
    this.edgeReset = 0;
    this.edgesSent = 0;
    this.parentHeld = 0n;
    this.parentHeld0 = 0n;
    this.parentChunks = 0;
    this.attachedAt = 0;
    this.lostWithheld = false;
    this.moving = false; // attached, and asking another member to adopt us (a handover)
    this.handedOver = false;
    this.prevParent = null; // a move's old parent, kept until the new one delivers
    this.prevPath = null;
    this.movedAt = 0;
    this.joined = false; // attached once: a join now is a rejoin or a move, never a welcome's
    this.welcomed = false; // the parent adopted us beyond its slots (ACCEPT_WELCOME)
    this.stats = { chunks: 0, duplicates: 0, tooOld: 0, forged: 0, pulls: 0, rejoins: 0, attaches: 0, withheld: 0, receipts: 0, welcomed: 0 };
    this.out = { messages: [], deliver: [], events: [] };
    this.learn(root, 0, 0, false);
  }

  // ---- outputs ----

  ready() {
    const rd = this.out;
    this.out = { messages: [], deliver: [], events: [] };
    return rd;
  }

  send(to, msg) { this.out.messages.push({ to, msg }); }
  event(e) { this.out.events.push(e); }

  depth() { return this.path.length; }

  snapshot() {
    return {
      state: this.state,
      parent: this.parent ? this.parent.id : '',
      depth: this.state === 'attached' ? this.depth() : -1,
      path: this.path.map((p) => p.id),
      children: this.kids.map((c) => c.info.id),
      highest: this.haveAny ? Number(this.highest) : -1,
      ...this.stats,
    };
  }

  // ---- members ----

  learn(info, depth, free, known) {
    if (!info || !info.id || info.id === this.self.id) return null;
    let m = this.members.get(info.id);
    if (!m) {
      if (this.members.size >= 128) this.forgetOne();
      m = { info: { id: info.id, addrs: [...(info.addrs || [])] }, depth: NO_DEPTH, free: 0, coolUntil: 0, bannedUntil: 0 };
      this.members.set(info.id, m);
      this.order.push(info.id);
    } else if (info.addrs && info.addrs.length) {
      m.info.addrs = [...info.addrs];
    }
    if (known) { m.depth = depth; m.free = free; }
    return m;
  }

  forgetOne() {
    const keep = new Set([this.root.id, this.parent && this.parent.id, this.attachTo, ...this.rivals.keys(), ...this.path.map((p) => p.id)]);
    const i = this.order.findIndex((id) => !keep.has(id));
    if (i >= 0) { this.members.delete(this.order[i]); this.order.splice(i, 1); }
  }

  infoOf(id) {
    const m = this.members.get(id);
    return m ? m.info : { id, addrs: [] };
  }

  banned(id, now) {
    const m = this.members.get(id);
    return !!m && now < m.bannedUntil;
  }

  // addCandidates tells the leaf of tree members it may attach to (the
  // page's node, from api/peer).
  // Those marked welcome are full nodes that may welcome a first join
  // (ATTACH_WELCOME): it asks them first, beside its race.
  addCandidates(now, peers) {
    for (const p of peers) {
      const m = this.learn(p, NO_DEPTH, 0, false);
      if (m && p.welcome && p.id !== this.root.id) m.welcome = true;
    }
  }

  // first says whether a join now is this browser's first: its attaches
  // ask for a welcome.
  first() { return !this.joined && !this.lostAt; }

  // ---- joining ----

  ok(m, now) {
    return now >= m.coolUntil && now >= m.bannedUntil && this.usable(m.info);
  }

  // join attaches to the first hint, else the best member known: those
  // with room first, shallowest first, the broadcaster last. With
  // cfg.race > 1, on its first join, it asks the next ones in that order
  // too (never the broadcaster, whose upload is its children's), and takes
  // the first that accepts.
  join(now) {
    const picks = [];
    const seen = new Set();
    const take = (m) => {
      if (!m || seen.has(m.info.id) || !this.ok(m, now)) return;
      seen.add(m.info.id);
      picks.push(m);
    };
    while (this.hints.length) take(this.members.get(this.hints.shift()));
    const opts = this.order.map((id) => this.members.get(id)).filter((m) => m.info.id !== this.root.id && this.ok(m, now));
    // A first join asks full nodes that may welcome it first (the race's
    // others may be browsers, whose set-up takes longer).
    const first = this.first();
    const welcomer = (m) => first && !!m.welcome;
    const rank = (m) => (welcomer(m) ? -2000 : 0) + (m.depth === NO_DEPTH ? 1000 : m.depth) + (m.free > 0 ? 0 : 3);
    opts.sort((a, b) => rank(a) - rank(b));
    for (const m of opts) take(m);
    const rootM = this.members.get(this.root.id);
    if (!picks.length) take(rootM);
    if (!picks.length) { this.state = 'detached'; return; }
    this.attach(now, picks[0]);
    const race = this.cfg.race + (this.cfg.race > 1 ? Math.min(picks.filter(welcomer).length, MAX_WELCOMERS) : 0);
    // (Not on a rejoin: its attach names the parent lost, which only the
    // one asked should hear.)
    for (const m of this.lostAt ? [] : picks.slice(1)) {
      if (this.rivals.size + 1 >= race) break;
      if (m.info.id === this.root.id) continue;
      this.rivals.set(m.info.id, this.deadlineFor(now, m.info.id));
      this.stats.attaches++;
      this.sendAttach(m.info);
    }
  }

  attach(now, m) {
    this.state = 'attaching';
    this.attachTo = m.info.id;
    this.attachDeadline = this.deadlineFor(now, m.info.id);
    this.rivals.clear(); // (one that accepts late is undone then)
    this.stats.attaches++;
    this.sendAttach(m.info);
  }

  // promote makes a rival still running the one attach waited for, when
  // attachTo has failed; it reports whether there was one.
  promote() {
    for (const [id, deadline] of this.rivals) {
      this.rivals.delete(id);
      this.attachTo = id;
      this.attachDeadline = deadline;
      return true;
    }
    return false;
  }

  // dropRival gives up on a rival (it refused, redirected, timed out, went
  // away): it is cooled like any attach that failed.
  dropRival(now, id, cool) {
    if (!this.rivals.delete(id)) return false;
    const m = this.members.get(id);
    if (m) m.coolUntil = Math.max(m.coolUntil, now + cool);
    this.event({ type: 'race-lost', peer: id });
    return true;
  }

  // uses says whether the leaf still needs to talk to id: its parent, one
  // it asked to adopt it, a child, an ancestor, or a move's old parent.
  uses(id) {
    return (this.parent && this.parent.id === id) || this.attachTo === id || this.rivals.has(id) ||
      (this.prevParent && this.prevParent.id === id) || this.childIndex(id) >= 0 || this.path.some((p) => p.id === id);
  }

  // deadlineFor is when an attach to id sent now is given up: AttachTimeout
  // for the answer, plus the time a dial may take if the stream to id has
  // yet to open (a browser's WebRTC handshake can take longer than
  // AttachTimeout on a busy machine; giving up on it meanwhile, and then on
  // the late accept, costs a stall).
  deadlineFor(now, id) {
    return now + this.cfg.attachTimeout + (this.connected(id) ? 0 : this.cfg.dialTimeout);
  }

  // opened tells the leaf that the shell's stream to a peer has opened
  // and what was waiting for it has gone: an attach to it gets its
  // AttachTimeout from now.
  opened(now, id) {
    if (id === this.attachTo && this.attachDeadline > now + this.cfg.attachTimeout) this.attachDeadline = now + this.cfg.attachTimeout;
    const r = this.rivals.get(id);
    if (r !== undefined && r > now + this.cfg.attachTimeout) this.rivals.set(id, now + this.cfg.attachTimeout);
  }

  sendAttach(to, flags = 0) {
    const fields = { seq: this.haveAny ? this.next + 1n : 0n, capacity: this.cfg.slots, free: this.free(), addrs: [...this.self.addrs] };
    if (this.lostAt) {
      fields.lost = this.lostParent;
      if (this.lostWithheld) flags |= ATTACH_WITHHELD;
    }
    if (this.first() && !this.moving) flags |= ATTACH_WELCOME;
    if (flags) fields.flags = flags;
    this.send(to, message(Type.ATTACH, fields));
  }

  // setAddrs changes where others reach this browser (a relay reservation
  // made or lost): the parent hears it through an attach again (it
  // re-adopts a child that asks again, taking its new addresses), the
  // children through the path.
  setAddrs(now, addrs) {
    this.self = { id: this.self.id, addrs: [...addrs] };
    if (this.state !== 'attached' || !this.parent || this.moving) return;
    this.attachTo = this.parent.id;
    this.attachDeadline = this.deadlineFor(now, this.parent.id);
    this.sendAttach(this.parent);
    this.tellPath(now);
  }

  attachFailed(now) {
    const m = this.members.get(this.attachTo);
    if (m) m.coolUntil = now + 2 * this.cfg.attachTimeout;
    if (this.moving) { this.cancelMove(now); return; }
    this.attachTo = null;
    if (this.promote()) return; // a rival may yet accept
    this.state = 'detached';
    this.join(now);
  }

  stepAccept(now, from, msg) {
    if (from !== this.attachTo && this.rivals.has(from) && this.state === 'attaching' && !this.moving) {
      // A rival answered first: it is the one; attachTo becomes a rival,
      // left below with the others.
      this.rivals.delete(from);
      if (this.attachTo) this.rivals.set(this.attachTo, this.attachDeadline);
      this.attachTo = from;
    }
    if (from !== this.attachTo) {
      // A late accept from a member we gave up on: undo it.
      if (!this.parent || this.parent.id !== from) this.send(this.infoOf(from), message(Type.LEAVE));
      return;
    }
    if (msg.path.some((p) => p.id === this.self.id || this.childIndex(p.id) >= 0)) {
      // Adopted under our own subtree: leave at once.
      this.send(this.infoOf(from), message(Type.LEAVE));
      this.attachFailed(now);
      return;
    }
    const rejoin = this.lostAt !== 0;
    const old = this.parent;
    const moved = this.moving && this.state === 'attached' && old && old.id !== from;
    if (moved) {
      // Make before break: the old parent is left once the new one has
      // delivered a chunk (confirmMove); until then it still feeds us, and
      // we go back to it if the new one withholds (checkMove).
      this.confirmMove();
      this.prevParent = old;
      this.prevPath = this.path.map((p) => ({ id: p.id, addrs: [...p.addrs] }));
      this.movedAt = now;
    }
    this.moving = false;
    this.state = 'attached';
    this.attachTo = null;
    this.parent = this.infoOf(from);
    this.parentHeard = now;
    this.parentOutSince = 0;
    this.parentHeld = 0n;
    this.parentHeld0 = 0n;
    this.parentChunks = 0;
    this.attachedAt = now;
    this.chunksSince = 0; // a receipt counts what came from this parent only
    this.newAt = Math.max(this.newAt, now); // a new parent gets WithholdTimeout to deliver
    this.lostWithheld = false;
    this.hints = [];
    this.lostAt = 0;
    this.joined = true;
    this.welcomed = !!(msg.flags & ACCEPT_WELCOME);
    if (this.welcomed && !moved) this.stats.welcomed++;
    if (rejoin) this.stats.rejoins++;
    this.setPath(msg.path, now);
    // The race is won: the others are left (an adoption they made is
    // undone; one that has yet to hear the attach the shell may drop).
    for (const id of [...this.rivals.keys()]) {
      this.send(this.infoOf(id), message(Type.LEAVE));
      this.dropRival(now, id, 0);
    }
    this.event({ type: 'attached', peer: from, depth: this.depth(), rejoin, moved });
    this.sendStatus(now);
  }

  stepRedirect(now, from, msg) {
    const rival = this.rivals.has(from);
    if (from !== this.attachTo && !rival) return;
    const m = this.members.get(from);
    if (m) { m.free = 0; m.coolUntil = now + this.cfg.attachTimeout; }
    if (this.moving) { this.cancelMove(now); return; }
    for (const c of msg.candidates) {
      if (!c.peer || c.peer.id === this.self.id) continue;
      this.learn(c.peer, c.depth, c.free, true);
      if (this.lostAt) this.hints.push(c.peer.id);
    }
    this.event({ type: 'redirected', peer: from, to: msg.candidates.map((c) => c.peer && c.peer.id) });
    if (rival) { this.dropRival(now, from, this.cfg.attachTimeout); return; }
    this.attachTo = null;
    if (this.promote()) return; // the others may yet accept
    this.state = 'detached';
    this.join(now);
  }

  setPath(path, now = 0) {
    this.path = path.map((p) => ({ id: p.id, addrs: [...p.addrs] }));
    this.statusDirty = true;
    path.forEach((p, i) => this.learn(p, i, 0, true));
    if (this.kids.length) this.tellPath(now);
  }

  // loseParent starts a rejoin: the hints, then the ancestors from the
  // nearest up (the grandparent has just lost a child: a free slot), then
  // whoever else is known.
  loseParent(now, why, hints = []) {
    if (this.prevParent) {
      this.send(this.prevParent, message(Type.LEAVE)); // a move under way: give it up too
      this.prevParent = null;
      this.prevPath = null;
    }
    if (why !== 'withheld' && why !== 'forged') this.lostWithheld = false;
    this.handedOver = false;
    const old = this.parent;
    const m = old && this.members.get(old.id);
    if (m) { m.coolUntil = Math.max(m.coolUntil, now + 2 * this.cfg.parentTimeout); m.depth = NO_DEPTH; }
    this.event({ type: 'parent-lost', peer: old ? old.id : '', why });
    if (!this.lostAt) this.lostAt = now;
    this.lostParent = old ? old.id : '';
    this.parent = null;
    this.hints = [...hints];
    for (let i = this.path.length - 2; i >= 0; i--) this.hints.push(this.path[i].id);
    if (this.moving) {
      // A move was under way: its target may yet accept; let it.
      this.moving = false;
      this.state = 'attaching';
      return;
    }
    this.state = 'detached';
    this.attachTo = null;
    this.join(now);
  }

  // ---- inputs ----

  // step takes a message from a peer. A chunk must have been verified.
  step(now, from, msg) {
    if (this.state === 'left' || this.banned(from, now)) return;
    switch (msg.type) {
      case Type.CHUNK: this.stepChunk(now, from, msg.chunk); break;
      case Type.PING: {
        const attached = this.state === 'attached';
        this.send(this.infoOf(from), message(Type.PONG, { time: msg.time, depth: attached ? this.depth() : NO_DEPTH, free: attached ? this.free() : 0, seq: this.held() }));
        break;
      }
      case Type.ACCEPT: this.stepAccept(now, from, msg); break;
      case Type.REDIRECT: this.stepRedirect(now, from, msg); break;
      case Type.REJECT:
        if (from === this.attachTo || this.rivals.has(from)) {
          const m = this.members.get(from);
          if (m && msg.reason === Reason.DETACHED) m.depth = NO_DEPTH;
          if (!this.dropRival(now, from, 2 * this.cfg.attachTimeout)) this.attachFailed(now);
        }
        break;
      case Type.LEAVE: {
        const i = this.childIndex(from);
        if (i >= 0) this.removeChild(i);
        if (this.prevParent && from === this.prevParent.id) { this.prevParent = null; this.prevPath = null; }
        if (this.state === 'attached' && this.parent && from === this.parent.id) {
          if ((msg.flags & LEAVE_HANDOVER) && this.takeHandover(now, msg)) break;
          const hints = [];
          for (const c of msg.candidates) {
            if (!c.peer) continue;
            this.learn(c.peer, c.depth, c.free, true);
            hints.push(c.peer.id);
          }
          this.loseParent(now, 'left', hints);
        }
        break;
      }
      case Type.PATH: this.stepPath(now, from, msg); break;
      case Type.ATTACH: this.stepAttach(now, from, msg); break;
      case Type.STATUS: this.stepStatus(now, from, msg); break;
      case Type.PULL: this.stepPull(now, from, msg); break;
      case Type.RECEIPT: this.stepReceipt(now, from, msg); break;
      case Type.EDGE:
        if (this.inPath(from)) this.hearEdge(now, msg.seq);
        break;
      default:
        // Message types of a newer protocol: ignored.
    }
  }

  stepPath(now, from, msg) {
    if (this.state !== 'attached' || !this.parent || from !== this.parent.id) return;
    this.parentHeard = now;
    // A heartbeat says what the parent holds (1 + its highest).
    this.parentHeld = msg.seq;
    if (this.parentHeld0 === 0n) this.parentHeld0 = msg.seq;
    // A parent out of the tree for long cannot feed us: rejoin on our own.
    if (msg.depth !== NO_DEPTH) this.parentOutSince = 0;
    else if (!this.parentOutSince) this.parentOutSince = now;
    else if (now - this.parentOutSince > 2 * this.cfg.parentTimeout) {
      this.send(this.parent, message(Type.LEAVE));
      this.loseParent(now, 'silent');
      return;
    }
    if (msg.path.length) {
      if (msg.path.some((p) => p.id === this.self.id)) {
        this.send(this.parent, message(Type.LEAVE));
        this.loseParent(now, 'loop');
        return;
      }
      this.setPath(msg.path, now);
    }
  }

  // forged tells the leaf that a peer sent a chunk that failed
  // verification: it is not trusted for BanDuration, left if it is the
  // parent, given up if it is being asked to adopt us.
  forged(now, from, why) {
    this.stats.forged++;
    this.event({ type: 'forged', peer: from, why });
    const m = this.learn(this.infoOf(from), NO_DEPTH, 0, false);
    if (m) m.bannedUntil = now + this.cfg.banDuration;
    const i = this.childIndex(from);
    if (i >= 0) { this.send(this.kids[i].info, message(Type.LEAVE)); this.removeChild(i); }
    if (this.state === 'attached' && this.parent && this.parent.id === from) {
      this.send(this.parent, message(Type.LEAVE));
      // The rejoin names it as a parent that misbehaved, as a withholder
      // is named (a Go node does the same): where this leaf's receipts
      // made it a witness (the grandparent), it is believed and sends
      // nobody else there.
      this.lostWithheld = true;
      this.loseParent(now, 'forged');
    } else if (this.attachTo === from) {
      this.attachFailed(now);
    } else {
      this.dropRival(now, from, this.cfg.banDuration);
    }
  }

  stepChunk(now, from, c) {
    const fromParent = this.state === 'attached' && this.parent && from === this.parent.id;
    if (fromParent) {
      this.parentHeard = now;
      this.parentChunks++;
      this.confirmMove(); // a move's new parent delivers: leave the old one
    }
    if (c.flags & FLAG_INIT) {
      if (c.seq <= this.lastInit) { this.stats.duplicates++; return; }
      this.lastInit = c.seq;
      this.initChunk = c;
      this.stats.chunks++;
      this.out.deliver.push(c);
      this.forward(now, from, c);
      return;
    }
    const w = BigInt(this.cfg.window);
    const slot = Number(c.seq % w);
    if (!this.haveAny) {
      this.haveAny = true;
      this.highest = this.next = c.seq;
      this.newAt = now;
    } else if (c.seq + w <= this.highest || (c.seq < this.next && !this.has(c.seq))) {
      this.stats.tooOld++;
      return;
    } else if (this.has(c.seq)) {
      this.stats.duplicates++;
      return;
    }
    this.ring[slot] = c;
    this.stats.chunks++;
    if (fromParent) this.chunksSince++;
    if (c.seq > this.highest) { this.highest = c.seq; this.newAt = now; }
    if (this.highest >= w && this.next < this.highest - w + 1n) this.next = this.highest - w + 1n;
    while (this.next <= this.highest && this.has(this.next)) this.next++;
    if (this.next > this.highest) { this.gapSince = 0; this.pulls = 0; } else if (!this.gapSince) this.gapSince = now;
    this.out.deliver.push(c);
    this.forward(now, from, c);
  }

  chunkAt(seq) {
    const c = this.ring[Number(seq % BigInt(this.cfg.window))];
    return c && c.seq === seq ? c : null;
  }

  has(seq) { return this.chunkAt(seq) !== null; }

  // peerDown tells the leaf that the connection to a peer went away.
  peerDown(now, id) {
    if (this.state === 'left') return;
    const m = this.members.get(id);
    if (m) { m.coolUntil = Math.max(m.coolUntil, now + 2 * this.cfg.attachTimeout); m.depth = NO_DEPTH; }
    const i = this.childIndex(id);
    if (i >= 0) this.removeChild(i);
    if (this.prevParent && this.prevParent.id === id) { this.prevParent = null; this.prevPath = null; } // nothing to go back to
    if (this.state === 'attached' && this.parent && this.parent.id === id) this.loseParent(now, 'down');
    else if (this.attachTo === id) this.attachFailed(now);
    else this.dropRival(now, id, 2 * this.cfg.attachTimeout);
  }

  // leave takes this browser out of the tree, telling its parent, and
  // sends its children to the parent and the room below.
  leave() {
    if (this.state === 'attached' && this.parent) this.send(this.parent, message(Type.LEAVE));
    if (this.prevParent) this.send(this.prevParent, message(Type.LEAVE));
    if (this.state === 'attaching') for (const id of [this.attachTo, ...this.rivals.keys()]) if (id) this.send(this.infoOf(id), message(Type.LEAVE));
    this.rivals.clear();
    this.leaveChildren();
    this.state = 'left';
  }

  sendStatus(now) {
    this.lastStatus = now;
    this.statusDirty = false;
    this.send(this.parent, this.status());
  }

  // tick: attach deadlines, the parent's silence, the status keepalive,
  // repairs. Call it every 50–100 ms.
  tick(now) {
    if (this.state === 'left') return;
    this.tickParent(now);
    this.tickChildren(now);
  }

  tickParent(now) {
    switch (this.state) {
      case 'detached': this.join(now); return;
      case 'attaching':
        for (const [id, deadline] of [...this.rivals]) if (now >= deadline) this.dropRival(now, id, 2 * this.cfg.attachTimeout);
        if (now >= this.attachDeadline) this.attachFailed(now);
        return;
      default:
    }
    if (now - this.parentHeard > this.cfg.parentTimeout) { this.loseParent(now, 'silent'); return; }
    this.checkMove(now);
    if (this.checkWithheld(now)) return;
    if (this.moving && now >= this.attachDeadline) this.cancelMove(now);
    else if (this.attachTo && !this.moving && now >= this.attachDeadline) this.attachTo = null; // a refresh unanswered
    if (this.state !== 'attached') return; // a handover that came to nothing
    const since = now - this.lastStatus;
    if (since >= this.cfg.statusKeepalive || (this.statusDirty && since >= this.cfg.statusInterval)) this.sendStatus(now);
    this.maybeSendReceipt(now);
    this.repairGaps(now);
  }

  // repairGaps pulls a hole open for GapTimeout: from the parent, every
  // other time from an ancestor that is neither the parent nor the
  // broadcaster (whose upload is for its children).
  repairGaps(now) {
    if (!this.gapSince || this.next > this.highest) return;
    if (now - this.gapSince < this.cfg.gapTimeout || now - this.pulledAt < this.cfg.gapTimeout) return;
    let end = this.next;
    while (end <= this.highest && !this.has(end) && end - this.next < BigInt(this.cfg.maxPull)) end++;
    let to = this.parent;
    if (this.pulls % 2 === 1) {
      const alts = this.path.slice(1, -1).filter((p) => this.ok(this.members.get(p.id) || { info: p, coolUntil: 0, bannedUntil: 0 }, now));
      if (alts.length) to = alts[Math.floor(this.rand() * alts.length)];
    }
    this.pulls++;
    this.pulledAt = now;
    this.stats.pulls++;
    this.send(to, message(Type.PULL, { seq: this.next, count: Number(end - this.next) }));
  }
}

Object.assign(Leaf.prototype, children, trust);
