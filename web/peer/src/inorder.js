// InOrder puts the chunks the tree delivers (each once, in any order) back
// in sequence for the player, as media/internal/inorder does for the Go
// players: it starts at a keyframe, waits for a hole up to `wait` ms (the
// time a repair pull takes), then gives it up and resumes at the next
// keyframe. An init chunk carries the seq of the first part it applies to
// and comes out just before that part. Pure: time is an argument.
import { FLAG_INIT, FLAG_KEYFRAME, FLAG_END } from './chunk.js';

export class InOrder {
  constructor({ wait = 2000, max = 300 } = {}) {
    this.wait = wait;
    this.max = max; // chunks held at most
    this.next = null; // the seq expected next; null until a keyframe starts us
    this.parts = new Map(); // seq → chunk
    this.inits = []; // init chunks not yet out, by seq
    this.waitingSince = 0;
    this.skipped = 0; // holes given up
  }

  // push takes a verified chunk and returns what is now ready, in order.
  push(now, c) {
    if (c.flags & FLAG_INIT) {
      this.inits.push(c);
      this.inits.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    } else if (this.next === null || c.seq >= this.next) {
      this.parts.set(c.seq, c);
    }
    return this.poll(now);
  }

  // poll returns what is ready: call it on a timer too, so a hole is given
  // up on time.
  poll(now) {
    const out = [];
    if (this.next === null) {
      const start = this.firstKeyframe(null);
      if (start === null || !this.inits.some((i) => i.seq <= start)) return out;
      this.next = start;
      // Inits for parts before the start will never be needed, but the
      // newest of them is the one that applies.
      const older = this.inits.filter((i) => i.seq <= start);
      this.inits = [older[older.length - 1], ...this.inits.filter((i) => i.seq > start)];
      for (const s of [...this.parts.keys()]) if (s < start) this.parts.delete(s);
    }
    for (;;) {
      while (this.parts.has(this.next)) {
        this.emitInits(out, this.next);
        const c = this.parts.get(this.next);
        this.parts.delete(this.next);
        out.push(c);
        this.next++;
        this.waitingSince = 0;
        if (c.flags & FLAG_END) return out;
      }
      if (!this.parts.size) { this.waitingSince = 0; return out; }
      if (!this.waitingSince) this.waitingSince = now;
      if (now - this.waitingSince < this.wait && this.parts.size < this.max) return out;
      // Give the hole up: resume at the next keyframe beyond it.
      const k = this.firstKeyframe(this.next);
      if (k === null) {
        if (this.parts.size >= this.max) this.parts.clear();
        return out;
      }
      for (const s of [...this.parts.keys()]) if (s < k) this.parts.delete(s);
      this.skipped++;
      this.next = k;
      this.waitingSince = 0;
      out.push({ gap: true });
    }
  }

  emitInits(out, seq) {
    while (this.inits.length && this.inits[0].seq <= seq) out.push(this.inits.shift());
  }

  firstKeyframe(after) {
    let k = null;
    for (const [s, c] of this.parts) {
      if ((c.flags & FLAG_KEYFRAME) && (after === null || s > after) && (k === null || s < k)) k = s;
    }
    return k;
  }
}
