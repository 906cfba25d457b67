// Chunks: verifying, keeping a window of, delivering and forwarding them;
// backfilling children, answering pulls and pulling what is missing.

package mesh

import (
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// maxExcess is how many bytes a chunk message may carry beyond its
// canonical encoding before its sender is taken for padding: an honest
// node forwards the canonical bytes (a chunk is re-encoded when it came
// otherwise), so anything much bigger is a relay wasting its children's
// download, and every relay below it would pay for it again.
const maxExcess = 1 << 10

func (n *Machine) stepChunk(now time.Time, from PeerID, m *Message) error {
	c := m.Chunk
	var err error
	if n.cfg.Verify != nil {
		err = n.cfg.Verify(c)
	} else {
		err = c.Verify(n.cfg.Broadcast, n.cfg.Key)
	}
	if err != nil {
		n.stats.Forged++
		n.event(Event{Type: EvForged, Peer: from})
		n.ban(now, from, LossForged)
		return err
	}
	if m.Excess > maxExcess {
		// The chunk is good (and forwarded as its canonical bytes); the
		// sender padded it.
		n.stats.Padded++
		n.event(Event{Type: EvPadded, Peer: from})
		n.ban(now, from, LossPadded)
	}
	if n.state == stateAttached && from == n.parent.ID {
		n.parentHeard = now
		n.parentChunks++
		n.confirmMove() // a move's new parent delivers: leave the old one
	}
	n.accept(now, from, c)
	return nil
}

// ban stops trusting a peer that sent a forged or padded chunk: as a
// parent it is left, as a child it is dropped, and it may not attach for
// BanDuration.
func (n *Machine) ban(now time.Time, id PeerID, why LossReason) {
	n.banFor(now, id)
	if i := n.childIndex(id); i >= 0 {
		n.send(n.children[i].info, &Message{Type: MsgLeave})
		n.removeChild(i)
	}
	if n.state == stateAttached && !n.isRoot && n.parent.ID == id {
		n.send(n.parent, &Message{Type: MsgLeave})
		// The rejoin names it as a parent that misbehaved, as a withholder
		// is named: where this node's receipts made it a witness (the
		// grandparent), it is believed and can take the liar's slot.
		n.lostWithheld = true
		n.loseParent(now, why, nil)
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
	if from == n.parent.ID && from != "" {
		n.chunksSince = addSat32(n.chunksSince, 1)
	}
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
		// At most a second of chunks (backfillSpan): what a rejoin lacks
		// beyond that is already late for the player, and sent first it
		// would hold the newest back behind it on this node's uplink;
		// it is pulled afterwards (repairGaps) for the replay's sake.
		from = max(want-1, lo)
		limit := uint64(max(backfillSpan/max(n.cfg.ChunkInterval, time.Millisecond), 2))
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
	if n.isRoot && from <= n.highest {
		// Within the broadcaster's spare upload; what is left out the
		// child pulls from elsewhere, or plays from the next keyframe.
		from = max(from, n.highest+1-n.rootSpend(now, n.highest+1-from))
	} else if from <= n.highest && want == 0 && c.welcomeEnd.IsZero() && !n.relaySpend(now, n.highest+1-from) {
		// A newcomer's keyframe backfill that the headroom cannot carry
		// now: it starts at the live edge (a player, at the next keyframe).
		// A welcomed one (welcome.go) is backfilled whole: its first frame
		// is why it was welcomed, and welcomes are bounded on their own.
		from = n.highest + 1
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
		// others serve strangers what their upload has spare a second.
		if n.isRoot {
			return
		}
		if now.Sub(n.strangerReset) >= time.Second {
			n.strangerReset, n.strangerServed = now, 0
		}
		budget := n.strangerBudget()
		count = min(count, budget-min(n.strangerServed, budget))
		n.strangerServed += count
	} else if n.isRoot {
		count = n.rootSpend(now, count)
	}
	to := n.infoOf(from)
	for s := m.Seq; s < m.Seq+count && s <= n.highest; s++ {
		if x := n.ring[s%w]; x != nil && x.Seq == s {
			n.send(to, &Message{Type: MsgChunk, Chunk: x})
		}
	}
}

// strangerBudget is how many chunks a second this node serves to pulls
// from peers that are not its children: a whole stream per free slot, at
// most maxPull, and nothing when its slots are full. The headroom of the
// slots in use (SlotsFor; the simulator's 1.5 leaves half a stream per
// slot) is for its own children: their backfills after a rejoin, a child
// being handed over, control messages, retransmissions. (It was half a
// stream per slot in use as well, and before that maxPull for every node:
// after a mass failure the orphans' repair pulls, which go to random
// members shallower than the puller, filled the uplinks of the full small
// relays near the top, and every stranger's pull is one more connection
// sharing that uplink with the children, which fell seconds behind.)
func (n *Machine) strangerBudget() uint64 {
	perStream := uint64(max(time.Second/max(n.cfg.ChunkInterval, time.Millisecond), 1))
	return min(perStream*uint64(n.free()), maxPull)
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
			!now.Before(m.coolUntil.time()) && !now.Before(m.bannedUntil.time()) && !now.Before(m.suspectUntil.time()) {
			opts = append(opts, id)
		}
	}
	if len(opts) == 0 {
		return PeerInfo{}
	}
	return n.members[opts[n.cfg.Rand.IntN(len(opts))]].info
}

// relaySpend spends k chunks of a relay's headroom on a newcomer's
// backfill from the last keyframe, if they fit in what is left of this
// second, and reports whether they did. A relay's slots are sized for its
// children's live chunks with headroom (SlotsFor; half a stream per slot
// in the simulator): a stream a second per two slots, at least one, is
// spare. All of it or nothing: a backfill cut short starts after the
// keyframe and no player can show it. In the arrival burst, relays whose
// children came and went backfilled every newcomer, up to two seconds of
// stream each and several a second; their uplinks fell seconds behind
// and every child below stalled (a 10,000-viewer simulation: one for
// 3.6 s, 252 viewers stalled; with the budget 1.8 s, 37).
// A child's rejoin backfill (at most a second) is not counted here: after
// a mass failure it is what brings the orphans back in time.
func (n *Machine) relaySpend(now time.Time, k uint64) bool {
	if k > n.spareLeft(now, n.perStream()*uint64(max(1, (n.cfg.Slots+1)/2))) {
		return false
	}
	n.spareUsed += k
	return true
}

// perStream is how many chunks a second the stream is.
func (n *Machine) perStream() uint64 {
	return uint64(max(time.Second/max(n.cfg.ChunkInterval, time.Millisecond), 1))
}

// spareLeft is what remains this second of a budget of spare chunks
// (spareUsed counts them; a new second starts it afresh).
func (n *Machine) spareLeft(now time.Time, budget uint64) uint64 {
	if now.Sub(n.spareReset) >= time.Second {
		n.spareReset, n.spareUsed = now, 0
	}
	return budget - min(n.spareUsed, budget)
}

// rootSpend spends up to k chunks of the broadcaster's spare upload — one
// chunk interval's worth of chunks a second, shared by backfills and
// pulls — and returns how many it may send. Its upload is sized for its
// children's live chunks with headroom; under a storm of rejoins and pulls
// (its children behind because it is behind) the extra must not grow with
// the demand, or it falls ever further behind (a 2,000-viewer simulation
// with padders at the top did).
func (n *Machine) rootSpend(now time.Time, k uint64) uint64 {
	if n.handing > 0 {
		return 0 // a handover under way feeds one child more already
	}
	k = min(k, n.spareLeft(now, n.perStream()))
	n.spareUsed += k
	return k
}
