// Children: slots, room below, and the answer to an attach (adopt, make
// room, redirect or refuse).

package mesh

import (
	"slices"
	"time"
)

func (n *Machine) free() uint32 {
	if len(n.children) >= n.cfg.Slots {
		return 0
	}
	return uint32(n.cfg.Slots - len(n.children))
}

func (n *Machine) subtree() uint32 {
	s := uint32(1)
	for _, c := range n.children {
		s += c.subtree
	}
	return s
}

func (n *Machine) removeChild(i int) {
	n.statusDirty = true
	id := n.children[i].info.ID
	n.children = slices.Delete(n.children, i, i+1)
	n.event(Event{Type: EvChildRemoved, Peer: id})
}

// roomBelow lists members with free slots in this node's subtree (itself
// included), shallowest first, excluding one peer.
func (n *Machine) roomBelow(except PeerID) []Candidate {
	var out []Candidate
	d := uint32(n.depth())
	if n.state == stateAttached && n.free() > 0 && n.cfg.Self.ID != except {
		out = append(out, Candidate{PeerInfo: n.cfg.Self, Depth: d, Free: n.free()})
	}
	for _, c := range n.children {
		if c.info.ID != except && c.free > 0 {
			out = append(out, Candidate{PeerInfo: c.info, Depth: d + 1, Free: c.free})
		}
	}
	for _, c := range n.children {
		for _, r := range c.room {
			if r.ID != except && r.ID != c.info.ID {
				out = append(out, r)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		if a.Depth != b.Depth {
			return int(a.Depth) - int(b.Depth)
		}
		return int(b.Free) - int(a.Free)
	})
	out = slices.CompactFunc(out, func(a, b Candidate) bool { return a.ID == b.ID })
	return out
}

func (n *Machine) myPath() []PeerInfo {
	p := make([]PeerInfo, 0, len(n.path)+1)
	p = append(p, n.path...)
	return append(p, n.cfg.Self)
}

// stepAttach answers a request to adopt the sender, in this order: refuse
// it (banned, out of the tree, a loop), take it back (already our child),
// adopt it (a free slot), make room for it (it relays more than one of our
// children), and otherwise redirect it to room below (or, for an
// improvement, refuse it).
func (n *Machine) stepAttach(now time.Time, from PeerID, m *Message) {
	info := PeerInfo{ID: from, Addrs: m.Addrs}
	if r := n.refusal(now, from); r != ReasonNone {
		n.send(info, &Message{Type: MsgReject, Reason: r})
		return
	}
	if m.Lost != "" {
		n.believeLost(now, m.Lost)
	}
	switch i := n.childIndex(from); {
	case i >= 0:
		n.readopt(now, n.children[i], info, m)
	case n.free() > 0:
		n.adopt(now, info, m)
	case m.Free >= 1 && n.displaceFor(now, info, m):
	case m.Flags&AttachImprove != 0:
		n.answerImprove(from, info, m)
	default:
		n.redirect(now, from, info, m)
	}
}

// refusal says why an attach from a peer must be refused outright, or
// ReasonNone.
func (n *Machine) refusal(now time.Time, from PeerID) Reason {
	switch {
	case n.banned(from, now):
		return ReasonBanned
	case n.state != stateAttached:
		return ReasonDetached
	case from == n.cfg.Self.ID || n.inPath(from):
		// The requester is one of our ancestors: adopting it would close a loop.
		n.event(Event{Type: EvLoopRefused, Peer: from})
		return ReasonLoop
	case from == n.parent.ID:
		return ReasonLoop
	}
	return ReasonNone
}

// believeLost handles the parent a requester says it lost. If it was our
// child and has been silent for two status intervals, believe it and free
// the slot now rather than at ChildTimeout; never send anyone back to it.
func (n *Machine) believeLost(now time.Time, lost PeerID) {
	if i := n.childIndex(lost); i >= 0 && now.Sub(n.children[i].heardAt) >= 2*n.cfg.StatusInterval {
		n.removeChild(i)
	}
}

// readopt answers a child that asks again (its accept was lost, or it
// wants chunks it lacks): accept it again and backfill it.
func (n *Machine) readopt(now time.Time, c *child, info PeerInfo, m *Message) {
	c.heardAt = now
	c.info = info
	n.send(info, &Message{Type: MsgAccept, Path: n.myPath(), Depth: uint32(n.depth())})
	n.backfill(now, c, m.Seq)
}

// displaceFor makes room in a full node for a requester that brings more
// slots than one of our children: it takes that child's place and adopts it
// (with its subtree), so capacity rises towards the root and the tree stays
// shallow; and a tree with no free slot left still lets in a joiner that
// relays, between a parent and a child. A node is only ever displaced by a
// strictly bigger one, so the order is monotone and cannot oscillate. It
// reports whether it adopted the requester.
func (n *Machine) displaceFor(now time.Time, info PeerInfo, m *Message) bool {
	victim := -1
	for i, c := range n.children {
		if c.info.ID == m.Lost || m.Capacity < c.capacity+1 {
			continue
		}
		if victim < 0 || c.capacity < n.children[victim].capacity ||
			c.capacity == n.children[victim].capacity && c.subtree < n.children[victim].subtree {
			victim = i
		}
	}
	if victim < 0 {
		return false
	}
	v := n.children[victim]
	n.removeChild(victim)
	n.adopt(now, info, m)
	hint := Candidate{PeerInfo: info, Depth: uint32(n.depth() + 1), Free: m.Free}
	n.send(v.info, &Message{Type: MsgLeave, Candidates: []Candidate{hint}})
	return true
}

// answerImprove answers an improvement move that found no room here: a
// climb is redirected to room higher up in this subtree, if any; anything
// else is refused, never redirected.
func (n *Machine) answerImprove(from PeerID, info PeerInfo, m *Message) {
	if m.Flags&AttachClimb != 0 && !n.isRoot {
		if room := n.climbRoom(from, m); len(room) > 0 {
			n.send(info, &Message{Type: MsgRedirect, Candidates: room})
			return
		}
	}
	n.send(info, &Message{Type: MsgReject, Reason: ReasonNoImprove})
}

// redirect sends a joiner that a full node cannot adopt to room below it,
// shallowest first, and, when that room is deep, to its nearest ancestors.
func (n *Machine) redirect(now time.Time, from PeerID, info PeerInfo, m *Message) {
	if n.isRoot {
		// The broadcaster's redirects are what keeps the tree shallow, but
		// in a join storm they would eat the upload its children need:
		// beyond a budget it stays silent and the joiner's attach times out
		// to its next candidate.
		if now.Sub(n.redirectReset) >= time.Second {
			n.redirectReset, n.redirects = now, 0
		}
		if n.redirects++; n.redirects > maxRootRedirects {
			return
		}
	}
	room := slices.DeleteFunc(n.roomBelow(from), func(c Candidate) bool { return c.ID == m.Lost })
	if len(room) == 0 {
		// Nobody below has reported room: send the joiner to the children
		// that relay at all; they will redirect further down.
		for _, c := range n.children {
			if c.capacity > 0 && c.info.ID != from && c.info.ID != m.Lost {
				room = append(room, Candidate{PeerInfo: c.info, Depth: uint32(n.depth() + 1)})
			}
		}
	}
	if d := uint32(n.depth()); !n.isRoot && (len(room) == 0 || room[0].Depth > d+2) {
		// The room below is deep: also name the nearest ancestors (not the
		// broadcaster), whose subtrees may have room higher up. A joiner
		// weighs depth against distance and picks.
		var up []Candidate
		for k := len(n.path) - 1; k >= 1 && k >= len(n.path)-2; k-- {
			if a := n.path[k]; a.ID != from && a.ID != m.Lost {
				up = append(up, Candidate{PeerInfo: a, Depth: uint32(k)})
			}
		}
		room = append(up, room...)
	}
	if len(room) == 0 {
		n.send(info, &Message{Type: MsgReject, Reason: ReasonFull})
		return
	}
	if len(room) > maxRedirect {
		room = room[:maxRedirect]
	}
	n.send(info, &Message{Type: MsgRedirect, Candidates: room})
}

// climbRoom lists the members of this subtree with room at least
// climbGain levels above a climbing requester. Being shallower than the
// requester, none of them is its descendant.
func (n *Machine) climbRoom(from PeerID, m *Message) []Candidate {
	if m.Depth < climbGain+1 {
		return nil
	}
	room := slices.DeleteFunc(n.roomBelow(from), func(c Candidate) bool {
		return c.ID == m.Lost || c.Depth+1 > m.Depth-climbGain
	})
	if len(room) > maxRedirect {
		room = room[:maxRedirect]
	}
	return room
}

func (n *Machine) adopt(now time.Time, info PeerInfo, m *Message) {
	c := &child{info: info, capacity: m.Capacity, free: m.Free, subtree: 1, heardAt: now, sentAt: now}
	if k := len(n.cfg.Counters); k > 0 {
		c.gauges = make([]uint64, k)
	}
	n.children = append(n.children, c)
	n.statusDirty = true
	n.learn(info, uint32(n.depth()+1), m.Free, true)
	n.event(Event{Type: EvChildAdded, Peer: info.ID})
	n.send(info, &Message{Type: MsgAccept, Path: n.myPath(), Depth: uint32(n.depth())})
	n.backfill(now, c, m.Seq)
}
