// Chunks: verifying, keeping a window of, delivering and forwarding them;
// backfilling children, answering pulls and pulling what is missing.

package mesh

import (
	"time"

	"github.com/peerscope/peerscope/chunk"
)

func (n *Machine) stepChunk(now time.Time, from PeerID, c *chunk.Chunk) error {
	var err error
	if n.cfg.Verify != nil {
		err = n.cfg.Verify(c)
	} else {
		err = c.Verify(n.cfg.Broadcast, n.cfg.Key)
	}
	if err != nil {
		n.stats.Forged++
		n.event(Event{Type: EvForged, Peer: from})
		n.ban(now, from)
		return err
	}
	if n.state == stateAttached && from == n.parent.ID {
		n.parentHeard = now
		n.confirmMove() // a move's new parent delivers: leave the old one
	}
	n.accept(now, from, c)
	return nil
}

// ban stops trusting a peer that sent a forged chunk: as a parent it is
// left, as a child it is dropped, and it may not attach for BanDuration.
func (n *Machine) ban(now time.Time, id PeerID) {
	n.banFor(now, id)
	if i := n.childIndex(id); i >= 0 {
		n.send(n.children[i].info, &Message{Type: MsgLeave})
		n.removeChild(i)
	}
	if n.state == stateAttached && !n.isRoot && n.parent.ID == id {
		n.send(n.parent, &Message{Type: MsgLeave})
		n.loseParent(now, LossForged, nil)
	} else if n.attachTo == id {
		n.attachFailed(now)
	}
}

// accept stores a verified chunk, delivers it and forwards it to the
// children, unless it is a duplicate or too old.
func (n *Machine) accept(now time.Time, from PeerID, c *chunk.Chunk) {
	if c.IsInit() {
		if n.lastInit != nil && c.Seq <= n.lastInit.Seq {
			n.stats.Duplicates++
			return
		}
		n.lastInit = c
		n.stats.ChunksIn++
		n.ready.Deliver = append(n.ready.Deliver, c)
		n.forward(now, from, c)
		return
	}
	w := uint64(len(n.ring))
	switch {
	case !n.haveAny:
		n.haveAny = true
		n.highest, n.next = c.Seq, c.Seq
		n.newAt = now
	case c.Seq+w <= n.highest || c.Seq < n.next && n.ring[c.Seq%w] == nil:
		// Older than the window, or older than where this node started.
		n.stats.TooOld++
		return
	case n.has(c.Seq):
		n.stats.Duplicates++
		return
	}
	n.ring[c.Seq%w] = c
	n.stats.ChunksIn++
	n.chunksSince = addSat32(n.chunksSince, 1)
	if c.Seq > n.highest {
		n.highest = c.Seq
		n.newAt = now
	}
	if n.highest >= w && n.next < n.highest-w+1 {
		n.next = n.highest - w + 1 // holes that fell out of the window are given up
	}
	for n.next <= n.highest && n.has(n.next) {
		n.next++
	}
	if n.next > n.highest {
		n.gapSince = time.Time{}
		n.pullFails = 0
	} else if n.gapSince.IsZero() {
		n.gapSince = now
	}
	n.ready.Deliver = append(n.ready.Deliver, c)
	n.forward(now, from, c)
}

func (n *Machine) has(seq uint64) bool {
	c := n.ring[seq%uint64(len(n.ring))]
	return c != nil && c.Seq == seq
}

func (n *Machine) forward(now time.Time, from PeerID, c *chunk.Chunk) {
	if len(n.children) == 0 {
		return
	}
	m := &Message{Type: MsgChunk, Chunk: c}
	for _, ch := range n.children {
		if ch.info.ID == from {
			continue
		}
		ch.sentAt = now
		n.send(ch.info, m)
	}
}

// backfill sends a new (or returning) child what it lacks: the latest init
// chunk, then chunks from seq on, or from the latest keyframe when it asks
// for the live edge (seq 0).
func (n *Machine) backfill(now time.Time, c *child, want uint64) {
	if n.lastInit != nil {
		n.send(c.info, &Message{Type: MsgChunk, Chunk: n.lastInit})
	}
	if !n.haveAny {
		return
	}
	w := uint64(len(n.ring))
	lo := uint64(0)
	if n.highest >= w {
		lo = n.highest - w + 1
	}
	from := n.highest + 1
	if want > 0 {
		// At most maxBackfill chunks: an attach must not cost the parent
		// seconds of upload; anything older is pulled from elsewhere.
		from = max(want-1, lo)
		limit := uint64(maxBackfill)
		if n.isRoot {
			limit = rootMaxBackfill
		}
		if n.highest+1 > limit {
			from = max(from, n.highest+1-limit)
		}
	} else {
		for s := n.highest; s >= lo && s+1 > 0; s-- {
			if x := n.ring[s%w]; x != nil && x.Seq == s && x.IsKeyframe() {
				from = s
				break
			}
			if s == 0 {
				break
			}
		}
	}
	for s := from; s <= n.highest; s++ {
		if x := n.ring[s%w]; x != nil && x.Seq == s {
			c.sentAt = now
			n.send(c.info, &Message{Type: MsgChunk, Chunk: x})
		}
	}
}

func (n *Machine) stepPull(now time.Time, from PeerID, m *Message) {
	if !n.haveAny || m.Count == 0 {
		return
	}
	w := uint64(len(n.ring))
	count := min(uint64(m.Count), maxPull)
	if n.childIndex(from) < 0 {
		// A stranger's pull spends upload meant for our children. The
		// broadcaster serves none (its upload is the scarcest there is);
		// others serve strangers up to maxPull chunks a second.
		if n.isRoot {
			return
		}
		if now.Sub(n.strangerReset) >= time.Second {
			n.strangerReset, n.strangerServed = now, 0
		}
		count = min(count, maxPull-n.strangerServed)
		n.strangerServed += count
	}
	to := n.infoOf(from)
	for s := m.Seq; s < m.Seq+count && s <= n.highest; s++ {
		if x := n.ring[s%w]; x != nil && x.Seq == s {
			n.send(to, &Message{Type: MsgChunk, Chunk: x})
		}
	}
}

// repairGaps pulls holes in the sequence that stayed open for GapTimeout:
// from the parent first, then from other members in the tree.
func (n *Machine) repairGaps(now time.Time) {
	if n.isRoot || n.gapSince.IsZero() || n.next > n.highest {
		return
	}
	if now.Sub(n.gapSince) < n.cfg.GapTimeout || now.Sub(n.pulledAt) < n.cfg.GapTimeout {
		return
	}
	end := n.next
	for end <= n.highest && !n.has(end) && end-n.next < maxPull {
		end++
	}
	to := n.parent
	if n.pullFails%2 == 1 { // every other pull goes elsewhere, then back to the parent
		if alt := n.pickPullSource(now); alt.ID != "" {
			to = alt
		}
	}
	n.pullFails++
	n.pulledAt = now
	n.stats.Pulls++
	n.send(to, &Message{Type: MsgPull, Seq: n.next, Count: uint32(end - n.next)})
}

// pickPullSource picks a random member known to be in the tree above this
// node's depth (so not below it, where the same hole is likely).
func (n *Machine) pickPullSource(now time.Time) PeerInfo {
	var opts []PeerID
	for _, id := range n.memberOrder {
		if m := n.members[id]; m.depth < uint32(n.depth()) && id != n.parent.ID && id != n.cfg.Root.ID &&
			!now.Before(m.coolUntil) && !now.Before(m.bannedUntil) && !now.Before(m.suspectUntil) {
			opts = append(opts, id)
		}
	}
	if len(opts) == 0 {
		return PeerInfo{}
	}
	return n.members[opts[n.cfg.Rand.IntN(len(opts))]].info
}
