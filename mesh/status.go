// The status a child sends its parent: when it goes, what it says, and
// what the parent does with it.

package mesh

import (
	"slices"
	"time"
)

// status builds the report a child sends its parent.
func (n *Machine) status() *Message {
	room := n.roomBelow("")
	if len(room) > maxRoom {
		room = room[:maxRoom]
	}
	return &Message{Type: MsgStatus, Capacity: uint32(n.cfg.Slots), Free: n.free(), Subtree: n.subtree(),
		Candidates: room, Hearts: n.heartsUp, Web: n.webBelow()}
}

// sendStatus reports to the parent now.
func (n *Machine) sendStatus(now time.Time) { n.sendStatusMsg(now, n.status()) }

func (n *Machine) sendStatusMsg(now time.Time, m *Message) {
	n.lastStatus = now
	n.sentStatus = *m
	n.statusDirty = false
	n.heartsUp = 0 // they are on their way up
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
	m := n.status()
	n.statusDirty = false
	if !due && sameStatus(m, &n.sentStatus) {
		return
	}
	n.sendStatusMsg(now, m)
}

func sameStatus(a, b *Message) bool {
	return a.Hearts == 0 && a.Capacity == b.Capacity && a.Free == b.Free && a.Subtree == b.Subtree && a.Web == b.Web &&
		sameRoom(a.Candidates, b.Candidates)
}

func sameRoom(a, b []Candidate) bool {
	return slices.EqualFunc(a, b, func(x, y Candidate) bool {
		return x.ID == y.ID && x.Depth == y.Depth && x.Free == y.Free
	})
}

// maxNodeHearts bounds the hearts one status may carry per node of the
// sender's subtree.
const maxNodeHearts = 1000

// AddHearts counts hearts tapped at this node. They go up the tree with the
// next status, summed with those of the subtree, so the broadcaster learns
// the audience's hearts without a message per viewer (Stats.Hearts).
func (n *Machine) AddHearts(count uint64) {
	n.stats.Hearts += count
	if !n.isRoot && count > 0 {
		n.heartsUp += count
		n.statusDirty = true
	}
}

// SetWeb says how many viewers this node serves outside the tree (browsers).
// Like Subtree, the count goes up the tree with each status, so that the
// broadcaster's Status().Web is the whole audience's.
func (n *Machine) SetWeb(count uint32) {
	if count != n.web {
		n.web, n.statusDirty = count, true
	}
}

func (n *Machine) webBelow() uint32 {
	w := uint64(n.web)
	for _, c := range n.children {
		w += uint64(c.web)
	}
	return uint32(min(w, 1<<32-1))
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
	if m.Hearts > 0 || c.capacity != m.Capacity || c.free != m.Free || c.subtree != max(m.Subtree, 1) || c.web != m.Web ||
		!sameRoom(c.room, m.Candidates) {
		n.statusDirty = true
	}
	c.capacity, c.free, c.subtree, c.web = m.Capacity, m.Free, max(m.Subtree, 1), m.Web
	n.AddHearts(min(m.Hearts, uint64(c.subtree)*maxNodeHearts))
	c.room = append(c.room[:0], m.Candidates...)
	if len(c.room) > maxRoom {
		c.room = c.room[:maxRoom]
	}
}
