// Children: what a browser that offers child slots does as a parent, the
// Go nodes' rules (mesh/children.go, mesh/chunks.go, mesh/status.go) for
// adopting, backfilling, forwarding, heartbeats, statuses and pulls. Other
// browsers are its children (over browser-to-browser WebRTC); so could a Go
// node be, though none asks a browser in practice. Installed on Leaf's
// prototype (leaf.js): a leaf is this with zero slots.
import { Type, Reason, message } from './wire.js';
import { FLAG_KEYFRAME } from './chunk.js';

const MAX_ROOM = 4; // candidates with room a status carries
const MAX_REDIRECT = 6;
const MAX_BACKFILL = 32;

export const children = {
  free() { return Math.max(0, this.cfg.slots - this.kids.length); },

  subtree() { return this.kids.reduce((s, c) => s + c.subtree, 1); },

  childIndex(id) { return this.kids.findIndex((c) => c.info.id === id); },

  myPath() { return [...this.path, { id: this.self.id, addrs: [...this.self.addrs] }]; },

  // roomBelow lists members with free slots in this subtree (this node
  // included), shallowest first.
  roomBelow(except = '') {
    const d = this.depth();
    const out = [];
    if (this.state === 'attached' && this.free() > 0 && this.self.id !== except) {
      out.push({ peer: this.myPath().at(-1), depth: d, free: this.free() });
    }
    for (const c of this.kids) if (c.info.id !== except && c.free > 0) out.push({ peer: c.info, depth: d + 1, free: c.free });
    for (const c of this.kids) for (const r of c.room) if (r.peer && r.peer.id !== except && r.peer.id !== c.info.id) out.push(r);
    out.sort((a, b) => a.depth - b.depth || b.free - a.free);
    return out.filter((r, i) => out.findIndex((x) => x.peer.id === r.peer.id) === i);
  },

  // stepAttach answers a request to adopt the sender: refuse it, take it
  // back (already a child), adopt it (a free slot), or send it to room
  // below (else refuse it: full).
  stepAttach(now, from, msg) {
    const info = { id: from, addrs: [...msg.addrs] };
    let why = Reason.NONE;
    if (this.banned(from, now)) why = Reason.BANNED;
    else if (this.state !== 'attached') why = Reason.DETACHED;
    else if (from === this.self.id || this.path.some((p) => p.id === from)) why = Reason.LOOP;
    if (why !== Reason.NONE) { this.send(info, message(Type.REJECT, { reason: why })); return; }
    const i = this.childIndex(from);
    if (i >= 0) {
      const c = this.kids[i];
      c.heardAt = now;
      c.info = info;
      this.send(info, message(Type.ACCEPT, { path: this.myPath(), depth: this.depth() }));
      this.backfill(now, c, msg.seq);
      return;
    }
    if (this.free() > 0) { this.adopt(now, info, msg); return; }
    const room = this.roomBelow(from).filter((r) => r.peer.id !== msg.lost).slice(0, MAX_REDIRECT);
    if (room.length) this.send(info, message(Type.REDIRECT, { candidates: room }));
    else this.send(info, message(Type.REJECT, { reason: Reason.FULL }));
  },

  adopt(now, info, msg) {
    const c = { info, capacity: msg.capacity, free: msg.free, subtree: 1, room: [], heardAt: now, sentAt: now };
    this.kids.push(c);
    this.statusDirty = true;
    this.learn(info, this.depth() + 1, msg.free, true);
    this.event({ type: 'child-added', peer: info.id });
    this.send(info, message(Type.ACCEPT, { path: this.myPath(), depth: this.depth() }));
    this.backfill(now, c, msg.seq);
  },

  removeChild(i) {
    const [c] = this.kids.splice(i, 1);
    this.statusDirty = true;
    this.event({ type: 'child-removed', peer: c.info.id });
  },

  // backfill sends a new (or returning) child the latest init, then the
  // chunks from want-1 (at most 32), or from the latest keyframe for 0.
  backfill(now, c, want) {
    if (this.initChunk) this.send(c.info, message(Type.CHUNK, { chunk: this.initChunk }));
    if (!this.haveAny) return;
    const w = BigInt(this.cfg.window);
    const lo = this.highest >= w ? this.highest - w + 1n : 0n;
    let from = this.highest + 1n;
    if (want > 0n) {
      from = want - 1n > lo ? want - 1n : lo;
      if (this.highest + 1n > BigInt(MAX_BACKFILL) && from < this.highest + 1n - BigInt(MAX_BACKFILL)) from = this.highest + 1n - BigInt(MAX_BACKFILL);
    } else {
      for (let s = this.highest; s >= lo; s--) {
        const x = this.chunkAt(s);
        if (x && (x.flags & FLAG_KEYFRAME)) { from = s; break; }
        if (s === 0n) break;
      }
    }
    for (let s = from; s <= this.highest; s++) {
      const x = this.chunkAt(s);
      if (x) { c.sentAt = now; this.send(c.info, message(Type.CHUNK, { chunk: x })); }
    }
  },

  forward(now, from, ch) {
    for (const c of this.kids) {
      if (c.info.id === from) continue;
      c.sentAt = now;
      this.send(c.info, message(Type.CHUNK, { chunk: ch }));
    }
  },

  // stepStatus takes in a child's status; a status from a peer that is
  // not our child is answered with a leave, so it rejoins.
  stepStatus(now, from, msg) {
    const i = this.childIndex(from);
    if (i < 0) { this.send(this.infoOf(from), message(Type.LEAVE)); return; }
    const c = this.kids[i];
    c.heardAt = now;
    const subtree = Math.max(msg.subtree, 1);
    if (c.capacity !== msg.capacity || c.free !== msg.free || c.subtree !== subtree) this.statusDirty = true;
    c.capacity = msg.capacity; c.free = msg.free; c.subtree = subtree;
    c.room = msg.candidates.filter((r) => r.peer).slice(0, MAX_ROOM);
  },

  // stepPull serves a child's pull from the window; strangers get nothing
  // (a browser's upload is for its children).
  stepPull(now, from, msg) {
    const i = this.childIndex(from);
    if (i < 0 || !this.haveAny || msg.count === 0) return;
    const n = BigInt(Math.min(msg.count, this.cfg.maxPull));
    for (let s = msg.seq; s < msg.seq + n && s <= this.highest; s++) {
      const x = this.chunkAt(s);
      if (x) this.send(this.kids[i].info, message(Type.CHUNK, { chunk: x }));
    }
  },

  // tickChildren drops the silent children and heartbeats the others (a
  // path message with our depth, 65536 while we are out of the tree, and
  // 1 + the highest sequence number we hold: what a child checks its
  // parent's withholding against).
  tickChildren(now) {
    for (let i = 0; i < this.kids.length; i++) {
      const c = this.kids[i];
      if (now - c.heardAt > this.cfg.childTimeout) { this.removeChild(i); i--; continue; }
      if (now - c.sentAt >= this.cfg.heartbeat) {
        c.sentAt = now;
        this.send(c.info, message(Type.PATH, { depth: this.state === 'attached' ? this.depth() : 65536, seq: this.held() }));
      }
    }
  },

  // tellPath gives the children their new ancestor path.
  tellPath(now) {
    const mine = this.myPath();
    for (const c of this.kids) {
      c.sentAt = now;
      this.send(c.info, message(Type.PATH, { path: mine, depth: this.depth() }));
    }
  },

  // leaveChildren sends the children elsewhere: the parent (a slot just
  // freed there), then the room below.
  leaveChildren() {
    const where = [];
    if (this.parent) where.push({ peer: this.parent, depth: Math.max(this.depth() - 1, 0), free: 1 });
    where.push(...this.roomBelow());
    for (const c of this.kids) {
      this.send(c.info, message(Type.LEAVE, { candidates: where.filter((r) => r.peer.id !== c.info.id) }));
    }
    this.kids = [];
  },

  // status is the report a child sends its parent.
  status() {
    return message(Type.STATUS, {
      capacity: this.cfg.slots, free: this.free(), subtree: this.subtree(),
      candidates: this.roomBelow().slice(0, MAX_ROOM),
    });
  },
};
