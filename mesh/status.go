// The status a child sends its parent: when it goes, what it says, and
// what the parent does with it.

package mesh

import (
	"slices"
	"time"
)

// status builds the report a child sends its parent.
func (n *Machine) status(now time.Time) *Message {
	var buf roomBuf
	room := keepRoom(n.appendRoomBelow(buf[:0], now, ""), maxRoom)
	return &Message{Type: MsgStatus, Capacity: uint32(n.cfg.Slots), Free: n.freeFor(now, ""), Subtree: n.subtree(),
		Candidates: room, Counters: n.counterValues(), Vouches: n.vouches()}
}

// sendStatus reports to the parent now.
func (n *Machine) sendStatus(now time.Time) { n.sendStatusMsg(now, n.status(now)) }

func (n *Machine) sendStatusMsg(now time.Time, m *Message) {
	n.lastStatus = now
	n.sentStatus = *m
	n.statusDirty = false
	n.sentCounters()
	n.send(n.parent, m)
}

// maybeSendStatus reports to the parent if the report changed, or if the
// last one is StatusKeepalive old. Most of a large tree is leaves whose
// report never changes: they send one message per keepalive instead of
// one per StatusInterval.
func (n *Machine) maybeSendStatus(now time.Time) {
	due := now.Sub(n.lastStatus) >= n.cfg.StatusKeepalive
	if !due && !n.statusDirty {
		return
	}
	m := n.status(now)
	n.statusDirty = false
	if !due && n.sameStatus(m, &n.sentStatus) {
		return
	}
	n.sendStatusMsg(now, m)
}

// sameStatus reports whether the status a says nothing that b, the last
// one sent, did not.
func (n *Machine) sameStatus(a, b *Message) bool {
	return a.Capacity == b.Capacity && a.Free == b.Free && a.Subtree == b.Subtree &&
		sameRoom(a.Candidates, b.Candidates) && n.sameCounters(a.Counters, b.Counters) && sameVouches(a.Vouches, b.Vouches)
}

func sameRoom(a, b []Candidate) bool {
	return slices.EqualFunc(a, b, func(x, y Candidate) bool {
		return x.ID == y.ID && x.Depth == y.Depth && x.Free == y.Free
	})
}

// stepStatus takes in a child's status: its capacity, room and subtree,
// and what its subtree adds up.
func (n *Machine) stepStatus(now time.Time, from PeerID, m *Message) {
	i := n.childIndex(from)
	if i < 0 {
		// A child we dropped (or never had) still thinks we are its
		// parent: tell it, so it rejoins instead of waiting for silence.
		n.send(n.infoOf(from), &Message{Type: MsgLeave})
		return
	}
	c := n.children[i]
	c.heardAt = now
	if c.capacity != m.Capacity || c.free != m.Free {
		n.statusDirty = true
	}
	c.capacity, c.free, c.claimed = m.Capacity, m.Free, max(m.Subtree, 1)
	if sub := n.boundSubtree(c, now); sub != c.subtree {
		c.subtree = sub
		n.statusDirty = true
	}
	if n.takeCounters(c, m.Counters) {
		n.statusDirty = true
	}
	// The room it reports below itself, as far as it can be true: at least
	// two levels below this node, and none of our ancestors or ourselves.
	var buf [maxRoom]Candidate
	room := buf[:0]
	d := uint32(n.depth())
	for _, r := range m.Candidates {
		if len(room) >= maxRoom {
			break
		}
		if r.Depth < d+2 || r.Depth >= noDepth || r.ID == n.cfg.Self.ID || r.ID == "" || n.inPath(r.ID) {
			continue
		}
		room = append(room, r)
	}
	if !sameRoom(c.room, room) {
		n.statusDirty = true
		c.room = append(c.room[:0], room...)
	}
	c.vouches = c.vouches[:0]
	for _, v := range m.Vouches {
		if len(c.vouches) >= maxRoom {
			break
		}
		if v.Proven > 0 && v.ID != "" && v.ID != n.cfg.Self.ID && !n.inPath(v.ID) {
			c.vouches = append(c.vouches, vouch{id: v.ID, proven: v.Proven})
		}
	}
}
