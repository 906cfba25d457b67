// Children: slots, room below, and the answer to an attach (adopt, make
// room, redirect or refuse).

package mesh

import (
	"fmt"
	"slices"
	"time"
)

// holding is how many children hold a slot (not being handed over, not
// welcomed beyond the slots).
func (n *Machine) holding() int { return len(n.children) - n.handing - n.welcoming }

// Holding returns how many children hold one of the node's slots: never
// more than its slots. (Children being handed over to a bigger relay are
// still fed, outside the slots, until they have moved.)
func (n *Machine) Holding() int { return n.holding() }

func (n *Machine) free() uint32 {
	if n.holding() >= n.cfg.Slots {
		return 0
	}
	return uint32(n.cfg.Slots - n.holding())
}

// subtree is this node and all below it, as bounded here, the sum
// saturating (a child being handed over is counted under its new parent).
func (n *Machine) subtree() uint32 {
	s := uint32(1)
	for _, c := range n.children {
		if !c.away() {
			s = addSat32(s, c.subtree)
		}
	}
	return s
}

func (n *Machine) removeChild(i int) {
	n.statusDirty = true
	c := n.children[i]
	switch {
	case !c.welcomeEnd.IsZero():
		n.welcoming--
	case c.handTo != "":
		n.handing--
	}
	if n.isRoot && len(c.vouches) > 0 && c.proven > 0 && c.caughtAt.IsZero() {
		// Its children, orphans now, will ask here: what it said of them
		// still counts for a while.
		n.pastVouches = append(n.pastVouches[:0:0], c.vouches...)
		n.pastVouchesUntil = n.lastTick.Add(2 * n.cfg.AttachTimeout)
	}
	n.children = slices.Delete(n.children, i, i+1)
	if c.orphan != nil {
		// Its slot is free: the orphan that named it is answered once the
		// input that removed it is done (answerReleased).
		n.released = append(n.released, c.orphan)
		c.orphan = nil
	}
	n.event(Event{Type: EvChildRemoved, Peer: c.info.ID})
}

// roomBelow lists members with free slots in this node's subtree (itself
// included), shallowest first, excluding one peer. A child's room is the
// room this node believes it has (believedFree), and of the room it
// reports below itself no more entries than the capacity believed of it;
// a child named as a withholder, and what it reports, are left out.
func (n *Machine) roomBelow(now time.Time, except PeerID) []Candidate {
	return n.appendRoomBelow(nil, now, except)
}

// roomBuf is room on the stack for roomBelow's list in the callers that
// keep only its first few entries (status, climbRoom): they run for most
// statuses and climbs, and building the whole list on the heap made
// roomBelow a third of the bytes a large simulation allocates.
type roomBuf [24]Candidate

// keepRoom returns a copy of the first k entries of room (nil when there
// are none), so that a list built in a roomBuf can be kept.
func keepRoom(room []Candidate, k int) []Candidate {
	if len(room) == 0 {
		return nil
	}
	return slices.Clone(room[:min(len(room), k)])
}

// appendRoomBelow is roomBelow appending to out[:0], which it returns.
func (n *Machine) appendRoomBelow(out []Candidate, now time.Time, except PeerID) []Candidate {
	out = out[:0]
	d := uint32(n.depth())
	if f := n.freeFor(now, ""); n.state == stateAttached && f > 0 && n.cfg.Self.ID != except {
		out = append(out, Candidate{PeerInfo: n.cfg.Self, Depth: d, Free: f})
	}
	for _, c := range n.children {
		if c.info.ID == except || c.away() || n.suspect(c.info.ID, now) {
			continue
		}
		if f := n.believedFree(c, now); f > 0 {
			out = append(out, Candidate{PeerInfo: c.info, Depth: d + 1, Free: f})
		}
	}
	for _, c := range n.children {
		if c.away() || n.suspect(c.info.ID, now) {
			continue
		}
		b := n.believed(c, now)
		taken := uint32(0)
		for _, r := range c.room {
			if taken >= b {
				break
			}
			if r.ID != except && r.ID != c.info.ID && !n.suspect(r.ID, now) {
				r.Free = min(r.Free, b)
				out = append(out, r)
				taken++
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
// improvement, refuse it). An orphan naming a child of ours still heard
// from may be held first (holdOrphan), when hold is set.
func (n *Machine) stepAttach(now time.Time, from PeerID, m *Message, hold bool) {
	info := PeerInfo{ID: from, Addrs: m.Addrs}
	if r := n.refusal(now, from); r != ReasonNone {
		n.send(info, &Message{Type: MsgReject, Reason: r})
		return
	}
	switch {
	case m.Lost != "" && m.Flags&AttachWithheld != 0:
		n.accused(now, from, m.Lost)
	case m.Lost != "":
		n.believeLost(now, m.Lost)
	}
	switch i := n.childIndex(from); {
	case i >= 0:
		n.readopt(now, n.children[i], info, m)
	case n.freeFor(now, from) > 0 && n.rootAdmits(now, m.Capacity, n.vouched(now, from)):
		n.heirCame(now, from)
		n.adopt(now, info, m)
	case (m.Free >= 1 || m.Flags&AttachWithheld != 0) && n.displaceFor(now, info, m):
	case m.Flags&AttachImprove != 0:
		n.answerImprove(now, from, info, m)
	case m.Flags&AttachWelcome != 0 && n.welcome(now, info, m):
	case hold && n.holdOrphan(now, from, m):
	default:
		n.redirect(now, from, info, m)
	}
}

// holdOrphan keeps, unanswered, an attach that names as the parent lost a
// child of ours still heard from (believeLost did not free its slot). A
// node that leaves tells its parent and its children at once, and a
// child's attach can reach us before the goodbye does; or the child died a
// moment ago. Sent away, the orphan would try the broadcaster and the
// others, all full, and come back after the slot is freed, seconds later.
// Held, it is answered as soon as the child is removed (its goodbye, its
// silence), or when the child answers the ping sent now (alive: the orphan
// is redirected, so a liar naming a sibling wins nothing), or at the
// deadline, when believeLost decides: by then an unanswered child has been
// silent two status intervals. One orphan is held per child; a second is
// redirected at once, as before.
func (n *Machine) holdOrphan(now time.Time, from PeerID, m *Message) bool {
	if m.Lost == "" || m.Flags&AttachWithheld != 0 {
		return false
	}
	i := n.childIndex(m.Lost)
	if i < 0 {
		return false
	}
	c := n.children[i]
	if c.orphan != nil && c.orphan.from != from {
		return false
	}
	h := &heldAttach{from: from, msg: *m, ping: now.UnixNano(), until: now.Add(2 * n.cfg.StatusInterval)}
	h.msg.Addrs = slices.Clone(m.Addrs)
	c.orphan = h
	n.send(c.info, &Message{Type: MsgPing, Time: h.ping})
	return true
}

// childAnswered takes a pong from a child: one that answers the ping of a
// held orphan is alive, and the orphan is answered now.
func (n *Machine) childAnswered(now time.Time, from PeerID, p *Message) {
	i := n.childIndex(from)
	if i < 0 {
		return
	}
	c := n.children[i]
	if h := c.orphan; h != nil && p.Time == h.ping {
		c.heardAt = now
		c.orphan = nil
		n.stepAttach(now, h.from, &h.msg, false)
	}
}

// heldDue answers the held orphans whose deadline has come.
func (n *Machine) heldDue(now time.Time) {
	var due []*heldAttach
	for _, c := range n.children {
		if h := c.orphan; h != nil && !now.Before(h.until) {
			c.orphan = nil
			due = append(due, h)
		}
	}
	for _, h := range due {
		n.stepAttach(now, h.from, &h.msg, false)
	}
}

// answerReleased answers the held orphans whose lost parent has been
// removed since: a slot is free for them.
func (n *Machine) answerReleased(now time.Time) {
	for len(n.released) > 0 {
		h := n.released[0]
		n.released = n.released[1:]
		if n.state != stateLeft {
			n.stepAttach(now, h.from, &h.msg, false)
		}
	}
	n.released = nil // (the emptied slice would keep what it held)
}

// refusal says why an attach from a peer must be refused outright, or
// ReasonNone.
func (n *Machine) refusal(now time.Time, from PeerID) Reason {
	switch {
	case n.banned(from, now) || n.suspect(from, now):
		// Banned here, or named as a withholder by one of our children's
		// children: not adopted (a child of ours is dropped).
		if i := n.childIndex(from); i >= 0 {
			n.removeChild(i)
		}
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
		if !n.children[i].away() {
			n.keepSlotFor(now, n.children[i])
		}
		n.removeChild(i)
	}
}

// readopt answers a child that asks again (its accept was lost, or it
// wants chunks it lacks): accept it again and backfill it.
func (n *Machine) readopt(now time.Time, c *child, info PeerInfo, m *Message) {
	c.heardAt = now
	c.info = info
	var flags uint32
	switch {
	case !c.welcomeEnd.IsZero():
		n.welcomeBack(now, c)
		flags = AcceptWelcome
	case c.handTo != "":
		n.handoverFailed(now, c)
	}
	n.send(info, &Message{Type: MsgAccept, Path: n.myPath(), Depth: uint32(n.depth()), Flags: flags})
	n.backfill(now, c, m.Seq)
}

// displaceFor makes room in a full node for a requester that offers more
// slots than one of our children (or when one is caught withholding): it
// takes that child's place and the child moves under it (with its
// subtree), so capacity rises towards the root and the tree stays shallow;
// and a tree with no free slot left still lets in a joiner that relays,
// between a parent and a child. A node is only ever displaced by a strictly
// bigger one, so the order is monotone and cannot oscillate (apart from a
// child caught withholding, and on the broadcaster one that had its trial
// and fed nobody: idleTrial).
//
// The claim is not believed: the displacement is a trial, made before
// break. The child is handed over (LeaveHandover) and still fed here,
// outside the slots, until it has a chunk from the newcomer; if it gets
// none it comes back and says so (an attach flagged withheld), and the
// newcomer, caught, is dropped (handoverFailed). A claim of capacity,
// however large, thus costs the displaced child nothing and holds no place.
// It reports whether it adopted the requester.
//
// A relay with no free slot of its own can take the place of a caught
// child only: that one is dropped, not handed over. So a grandchild that
// caught its parent padding, forging or withholding, and whose receipts
// made it a witness here (accused), is let in at once with the subtree it
// keeps, even when the liar holds this node's only slot. (Before, such an
// orphan was held, the liar answered the ping and the orphan was sent back
// to it, banned, again and again, until the liar fell silent or the
// orphan's children left: a real node waited 54 s, TestPaddedRelay.) A
// leaf is placed as before, under any relay with room.
func (n *Machine) displaceFor(now time.Time, info PeerInfo, m *Message) bool {
	onlyCaught := m.Free == 0
	if m.Capacity == 0 || onlyCaught && m.Flags&AttachWithheld == 0 || n.handing > 0 {
		// One handover at a time: each costs a stream beyond the slots
		// until it is done.
		return false
	}
	victim := -1
	var vouched uint32
	if n.isRoot {
		vouched = n.vouched(now, info.ID)
	}
	admitted := n.rootAdmits(now, m.Capacity, vouched)
	for i, c := range n.children {
		// The parent a requester lost is not displaced (it may be dead and
		// not yet known to be), unless it lost it for withholding.
		if c.info.ID == m.Lost && m.Flags&AttachWithheld == 0 || c.away() || !n.displaceable(now, c, m.Capacity, vouched) ||
			(!admitted || onlyCaught) && !n.caught(c, now) {
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
	hint := Candidate{PeerInfo: info, Depth: uint32(n.depth() + 1), Free: m.Free}
	if n.isRoot || n.caught(v, now) {
		// A withholder is fed no longer; and the broadcaster's upload is
		// for its children: it hands nobody over (which would feed one
		// more). A child it displaced for a withholder finds out at once
		// (its new parent sends no chunk, not even the init:
		// checkWithheld) and comes back.
		n.removeChild(victim)
		n.adopt(now, info, m)
		n.send(v.info, &Message{Type: MsgLeave, Candidates: []Candidate{hint}})
		return true
	}
	n.adopt(now, info, m)
	v.handTo, v.handUntil = info.ID, now.Add(n.cfg.ChildTimeout)
	n.handing++
	n.statusDirty = true
	n.send(v.info, &Message{Type: MsgLeave, Flags: LeaveHandover, Candidates: []Candidate{hint}})
	return true
}

// trimToSlots drops children beyond the slots (one caught withholding
// first, then the ones believed least of, then the smallest subtrees),
// each told where to go: this node's parent and the room below it.
func (n *Machine) trimToSlots(now time.Time) {
	for n.holding() > n.cfg.Slots {
		v := -1
		for i, c := range n.children {
			if c.away() {
				continue
			}
			if v < 0 {
				v = i
				continue
			}
			w := n.children[v]
			cc, wc := n.caught(c, now), n.caught(w, now)
			b, wb := n.believed(c, now), n.believed(w, now)
			if cc && !wc || cc == wc && (b < wb || b == wb && c.subtree < w.subtree) {
				v = i
			}
		}
		c := n.children[v]
		n.removeChild(v)
		var where []Candidate
		if n.state == stateAttached && !n.isRoot {
			where = append(where, Candidate{PeerInfo: n.parent, Depth: uint32(n.depth() - 1), Free: 1})
		}
		where = append(where, n.roomBelow(now, c.info.ID)...)
		where = slices.DeleteFunc(where, func(x Candidate) bool { return x.ID == n.cfg.Self.ID })
		if len(where) > maxRedirect {
			where = where[:maxRedirect]
		}
		n.send(c.info, &Message{Type: MsgLeave, Candidates: where})
	}
}

// answerImprove answers an improvement move that found no room here: a
// climb is redirected to room higher up in this subtree, if any; anything
// else is refused, never redirected.
func (n *Machine) answerImprove(now time.Time, from PeerID, info PeerInfo, m *Message) {
	if m.Flags&AttachClimb != 0 && !n.isRoot {
		if room := n.climbRoom(now, from, m); len(room) > 0 {
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
	room := slices.DeleteFunc(n.roomBelow(now, from), func(c Candidate) bool { return c.ID == m.Lost || c.ID == n.cfg.Self.ID })
	if h, ok := n.heirOf(now, m.Lost); ok && h.ID != from && m.Lost != "" {
		// A sibling of the requester took its lost parent's slot here: the
		// top of what was their subtree, first.
		room = append([]Candidate{{PeerInfo: h, Depth: uint32(n.depth() + 1)}}, slices.DeleteFunc(room, func(c Candidate) bool { return c.ID == h.ID })...)
	}
	if len(room) == 0 {
		// Nobody below has reported room: send the joiner to the children
		// that relay at all; they will redirect further down.
		for _, c := range n.children {
			if n.believed(c, now) > 0 && !c.away() && !n.suspect(c.info.ID, now) && c.info.ID != from && c.info.ID != m.Lost {
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
func (n *Machine) climbRoom(now time.Time, from PeerID, m *Message) []Candidate {
	if m.Depth < climbGain+1 || m.Depth >= noDepth {
		return nil
	}
	var buf roomBuf
	room := slices.DeleteFunc(n.appendRoomBelow(buf[:0], now, from), func(c Candidate) bool {
		return c.ID == m.Lost || c.Depth >= m.Depth-climbGain
	})
	return keepRoom(room, maxRedirect)
}

func (n *Machine) adopt(now time.Time, info PeerInfo, m *Message) { n.adoptAs(now, info, m, 0) }

// adoptAs adopts a child, its accept carrying flags (AcceptWelcome).
func (n *Machine) adoptAs(now time.Time, info PeerInfo, m *Message, flags uint32) {
	c := &child{info: info, capacity: m.Capacity, free: m.Free, subtree: 1, claimed: 1, heardAt: now, sentAt: now, addedAt: now}
	if flags&AcceptWelcome != 0 {
		c.welcomeEnd = now.Add(n.cfg.WelcomeFor + welcomeMove)
	}
	if k := len(n.cfg.Counters); k > 0 {
		c.gauges = make([]uint64, k)
	}
	n.children = append(n.children, c)
	n.statusDirty = true
	n.learn(info, uint32(n.depth()+1), m.Free, true)
	n.event(Event{Type: EvChildAdded, Peer: info.ID})
	n.send(info, &Message{Type: MsgAccept, Path: n.myPath(), Depth: uint32(n.depth()), Flags: flags})
	n.backfill(now, c, m.Seq)
}

// SetSlots changes how many children this node adopts, as the stream's
// measured bitrate (or the upload) changes. Shrinking below the children it
// has drops the ones it believes least of (the zero-slot leaves first, then
// the smallest subtrees), each told where to go: this node's parent and the
// room below it. The parent hears of the change with the next status.
func (n *Machine) SetSlots(now time.Time, slots int) error {
	if slots < 0 {
		return fmt.Errorf("%w: Slots is negative", ErrInvalidConfig)
	}
	if n.state == stateLeft || slots == n.cfg.Slots {
		n.cfg.Slots = slots
		return nil
	}
	n.cfg.Slots = slots
	n.statusDirty = true
	n.trimToSlots(now)
	return nil
}
