// Trust: what /peerscope/mesh/1.2.0 asks of a child, the Go nodes' rules
// (mesh/trust.go) as a browser keeps them. Capacity is earned, not claimed:
// a parent's parent believes the slots a relay offers only as far as the
// relay's children say, in receipts, that they are fed — so a browser at
// depth 2 or more tells its grandparent what came through its parent,
// every ReceiptInterval, or the relay feeding it (a Go node under the
// broadcaster, or another browser) looks like one that feeds nobody and
// loses its place to the next relay that claims more. The grandparent
// answers a receipt that is behind with its edge (1 + the highest sequence
// number it holds); with the parent's heartbeats, which say what it holds,
// that lets the browser tell a parent that withholds the stream from a
// quiet broadcast: such a parent is banned and left, and named, flagged
// withheld, to the next one asked. A parent that displaces this browser
// for a bigger relay (a Leave flagged handover) goes on feeding it until
// the relay has delivered: the browser moves make before break, and goes
// back, naming the relay, if it delivers nothing. As a grandparent itself
// (a browser whose children relay), it answers receipts with its edge, but
// judges nobody by them. Installed on Leaf's prototype (leaf.js).
import { Type, message } from './wire.js';

// Attach flags (proto/mesh.proto, field 14).
export const ATTACH_IMPROVE = 1; // a move: the asked member never redirects it
export const ATTACH_WITHHELD = 4; // the lost parent kept the stream back
// A first join's attach: a full node that keeps welcome slots may feed this
// browser at once beyond its slots, then hand it over to room below
// (mesh/welcome.go); one that does not know the flag ignores it.
export const ATTACH_WELCOME = 8;
// Accept flags.
export const ACCEPT_WELCOME = 1; // adopted beyond the slots: a handover follows
// Leave flags.
export const LEAVE_HANDOVER = 1; // displaced for the first candidate, fed until it delivers

// withholdSlack: a parent is taken for withholding only when the edge heard
// is more than this many chunks beyond what this browser holds.
const WITHHOLD_SLACK = 3n;
// edgeSlack: a receipt this many chunks behind is answered with the edge.
const EDGE_SLACK = WITHHOLD_SLACK + 1n;
// firstChunkWait, in chunk intervals: how long a new parent may send no
// chunk at all while its heartbeats say it holds newer ones.
const FIRST_CHUNK_WAIT = 3;
// Edges a second for peers that are not grandchildren.
const MAX_STRANGER_EDGES = 200;

export const trust = {
  // held is 1 + the highest sequence number held, 0n if none: what
  // receipts, pongs, heartbeats and edges carry.
  held() { return this.haveAny ? this.highest + 1n : 0n; },

  inPath(id) { return this.path.some((p) => p.id === id); },

  banFor(now, id) {
    const m = this.learn(this.infoOf(id), 0, 0, false);
    if (m) m.bannedUntil = now + this.cfg.banDuration;
  },

  // ---- receipts: the grandchild's side ----

  // maybeSendReceipt tells the grandparent what came through the parent:
  // every ReceiptInterval, at once when the grandparent changes, and
  // sooner while nothing new comes (its answer, an edge, says whether the
  // broadcast went on meanwhile). Not to a grandparent this browser cannot
  // reach (a browser dials WebRTC-direct, or another browser through a
  // relay).
  maybeSendReceipt(now) {
    if (this.state !== 'attached' || !this.parent || this.path.length < 2) return;
    const gp = this.path[this.path.length - 2];
    const half = this.cfg.withholdTimeout / 2;
    const starving = now - this.newAt >= half && this.parent.id !== this.root.id;
    const due = gp.id !== this.receiptTo || now - this.receiptAt >= this.cfg.receiptInterval ||
      (starving && now - this.receiptAt >= half);
    if (!due || !this.usable(gp)) return;
    this.receiptAt = now;
    this.receiptTo = gp.id;
    this.stats.receipts++;
    this.send(gp, message(Type.RECEIPT, { parent: this.parent.id, seq: this.held(), count: this.chunksSince, subtree: this.subtree() }));
    this.chunksSince = 0;
  },

  // ---- receipts: the grandparent's side ----

  // stepReceipt answers a receipt with this browser's edge when its sender
  // is behind: a grandchild (its parent is our child) always, anyone else
  // within MAX_STRANGER_EDGES a second.
  stepReceipt(now, from, msg) {
    const grandchild = msg.parent !== from && this.childIndex(msg.parent) >= 0;
    if (!grandchild && !this.edgeBudget(now)) return;
    const h = this.held();
    if (h > msg.seq && h - msg.seq >= EDGE_SLACK) this.send(this.infoOf(from), message(Type.EDGE, { seq: h }));
  },

  edgeBudget(now) {
    if (now - this.edgeReset >= 1000) { this.edgeReset = now; this.edgesSent = 0; }
    this.edgesSent++;
    return this.edgesSent <= MAX_STRANGER_EDGES;
  },

  // ---- the live edge and withholding ----

  // hearEdge records that the broadcast has reached seq (1 + a sequence
  // number), unless that cannot be true: beyond what this browser holds,
  // plus what could have been cut since its last new chunk, plus a window.
  hearEdge(now, seq) {
    if (seq === 0n) return;
    if (this.haveAny) {
      const since = BigInt(Math.floor(Math.max(now - this.newAt, 0) / Math.max(this.cfg.chunkInterval, 1)));
      if (seq > this.held() + since + BigInt(this.cfg.window)) return;
    }
    if (seq >= this.edge || now - this.edgeAt > 3 * this.cfg.withholdTimeout) { this.edge = seq; this.edgeAt = now; }
  },

  edgeAhead(now) {
    return this.edge > 0n && now - this.edgeAt <= 3 * this.cfg.withholdTimeout && this.edge > this.held() + WITHHOLD_SLACK;
  },

  // checkWithheld takes the parent for withholding: not a chunk since it
  // adopted this browser (not even the init it backfills at once) while its
  // heartbeats say it has had newer ones; or nothing new for
  // WithholdTimeout while the edge heard is well ahead and its heartbeats
  // say it holds more. A parent whose heartbeats say it lacks them too is
  // starving itself: it gets three times as long, then is left without a
  // ban. The broadcaster is not judged (it is the stream), nor a parent out
  // of the tree itself, nor one during a move. It reports whether the
  // parent was left.
  checkWithheld(now) {
    if (this.state !== 'attached' || !this.parent || this.parent.id === this.root.id || this.parentOutSince || this.prevParent) return false;
    if (this.parentChunks === 0 && now - this.attachedAt >= FIRST_CHUNK_WAIT * this.cfg.chunkInterval &&
      this.parentHeld0 > 0n && this.parentHeld > this.parentHeld0 + 1n && this.parentHeld > this.held() + 1n) {
      return this.leaveWithholder(now);
    }
    if (now - this.newAt < this.cfg.withholdTimeout || !this.edgeAhead(now)) return false;
    if (this.parentHeld <= this.held() + WITHHOLD_SLACK) {
      if (now - this.newAt < 3 * this.cfg.withholdTimeout) return false;
      this.send(this.parent, message(Type.LEAVE));
      this.loseParent(now, 'silent');
      return true;
    }
    return this.leaveWithholder(now);
  },

  leaveWithholder(now) {
    this.stats.withheld++;
    this.banFor(now, this.parent.id);
    this.send(this.parent, message(Type.LEAVE));
    this.lostWithheld = true;
    this.loseParent(now, 'withheld');
    return true;
  },

  // ---- handovers and moves: make before break ----

  // takeHandover answers the parent's Leave that hands this browser over
  // to a bigger relay, its first candidate: a move there, the parent
  // feeding it until the relay delivers. It reports whether it moves; if
  // not (no candidate, one banned, one it cannot reach, one of its own
  // children, a move under way) the Leave is a plain one.
  takeHandover(now, msg) {
    if (this.moving || this.prevParent || !msg.candidates.length) return false;
    const c = msg.candidates[0];
    if (!c.peer || c.peer.id === this.self.id || this.childIndex(c.peer.id) >= 0) return false;
    const m = this.learn(c.peer, c.depth, c.free, true);
    if (!m || now < m.bannedUntil || !this.usable(m.info)) return false;
    this.handedOver = true;
    this.moving = true;
    this.attachTo = m.info.id;
    this.attachDeadline = this.deadlineFor(now, m.info.id);
    this.stats.attaches++;
    this.sendAttach(m.info, ATTACH_IMPROVE);
    return true;
  },

  // cancelMove gives a move up (refused, redirected, unanswered): this
  // browser stays where it is, unless its parent gave its slot away.
  cancelMove(now) {
    const m = this.members.get(this.attachTo);
    if (m) m.coolUntil = Math.max(m.coolUntil, now + 2 * this.cfg.attachTimeout);
    this.moving = false;
    this.attachTo = null;
    if (this.handedOver && this.welcomed) {
      // A welcomer handed us on and still feeds us: ask it again (it hands
      // us on elsewhere, later). Rejoining would name it as lost to its
      // own parent, which could free its slot.
      this.handedOver = false;
      this.attachTo = this.parent.id;
      this.attachDeadline = this.deadlineFor(now, this.parent.id);
      this.sendAttach(this.parent);
    } else if (this.handedOver) {
      this.handedOver = false;
      this.loseParent(now, 'left');
    }
  },

  // confirmMove leaves the parent a move left behind, now that the new
  // one has delivered.
  confirmMove() {
    if (!this.prevParent) return;
    if (!this.parent || this.prevParent.id !== this.parent.id) this.send(this.prevParent, message(Type.LEAVE));
    this.prevParent = null;
    this.prevPath = null;
    this.handedOver = false;
  },

  // checkMove judges a move at its deadline: a new parent that sent no
  // chunk while the old one went on delivering new ones withholds: it is
  // banned and left, and this browser is back under the old parent, which
  // an attach flagged withheld tells (it takes the browser back and drops
  // the relay).
  checkMove(now) {
    if (!this.prevParent || now < this.movedAt + this.cfg.withholdTimeout) return;
    if (!(this.newAt > this.movedAt)) { this.confirmMove(); return; } // nothing new from anyone
    const bad = this.parent;
    this.stats.withheld++;
    this.banFor(now, bad.id);
    this.send(bad, message(Type.LEAVE));
    this.event({ type: 'parent-lost', peer: bad.id, why: 'withheld' });
    this.parent = this.prevParent;
    const path = this.prevPath;
    this.prevParent = null;
    this.prevPath = null;
    this.handedOver = false;
    this.parentHeard = now;
    this.chunksSince = 0;
    this.setPath(path, now);
    this.event({ type: 'attached', peer: this.parent.id, depth: this.depth(), moved: true });
    this.send(this.parent, message(Type.ATTACH, {
      seq: this.haveAny ? this.next + 1n : 0n, capacity: this.cfg.slots, free: this.free(),
      addrs: [...this.self.addrs], flags: ATTACH_WITHHELD, lost: bad.id,
    }));
    this.lastStatus = now;
  },
};
