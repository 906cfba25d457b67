// Joining: probing and ranking members, attaching, following redirects and
// accepts, the ancestor path, and rejoining after a parent is lost.

package mesh

import (
	"slices"
	"time"
)

// candidates returns the members this node could ask to adopt it, best
// first.
func (n *Machine) ranked(now time.Time) []*member {
	var out []*member
	for _, id := range n.memberOrder {
		m := n.members[id]
		if now.Before(m.coolUntil.time()) || now.Before(m.bannedUntil.time()) || now.Before(m.suspectUntil.time()) || n.childIndex(id) >= 0 {
			continue
		}
		if m.depth >= noDepth && id != n.cfg.Root.ID {
			continue
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b *member) int { return int(n.score(a) - n.score(b)) })
	return out
}

func (n *Machine) score(m *member) time.Duration {
	rtt := m.rtt
	if rtt == 0 {
		rtt = assumedRTT
	}
	d := m.depth
	if d >= noDepth {
		d = 0 // only the root gets here
	}
	s := rtt + time.Duration(d)*n.cfg.DepthCost
	if m.free == 0 {
		s += 3 * n.cfg.DepthCost // it would redirect: one more round trip, one level deeper
	}
	return s
}

// join starts (or continues) looking for a parent.
func (n *Machine) join(now time.Time) {
	if n.leftHint {
		// The parent left and said where to go: it was alive and knew,
		// so its first hint is asked at once, without probing.
		n.leftHint = false
		for len(n.hints) > 0 {
			m := n.members[n.hints[0]]
			n.hints = n.hints[1:]
			if m != nil && usableAt(m, now) && n.childIndex(m.info.ID) < 0 {
				n.attach(now, m, 0)
				return
			}
		}
	}
	if !n.lostAt.IsZero() && n.probeRejoin(now) {
		return
	}
	n.hints = n.hints[:0]
	// Probe members whose RTT is unknown, a few at a time. The broadcaster
	// is probed only when nobody else is known: with thousands joining, its
	// upload must not go to pongs and redirects.
	usable := func(id PeerID, m *member) bool {
		return !now.Before(m.coolUntil.time()) && !now.Before(m.bannedUntil.time()) && !now.Before(m.suspectUntil.time()) && n.childIndex(id) < 0
	}
	others := false
	for _, id := range n.memberOrder {
		if id != n.cfg.Root.ID && usable(id, n.members[id]) {
			others = true
			break
		}
	}
	probes := 0
	for _, id := range n.memberOrder {
		m := n.members[id]
		if m.rtt != 0 || !m.pingSentAt.IsZero() || !usable(id, m) || others && id == n.cfg.Root.ID {
			continue
		}
		n.ping(now, m)
		if probes++; probes >= n.cfg.Probes {
			break
		}
	}
	if probes > 0 {
		n.state = stateProbing
		n.probeDeadline = now.Add(n.cfg.ProbeTimeout)
		return
	}
	n.choose(now)
}

// choose asks the best ranked member to adopt this node. After a rejoin's
// probe the members that did not answer are taken for gone for a while.
func (n *Machine) choose(now time.Time) {
	if n.rejoinProbe && n.rejoinPick(now, true) {
		return
	}
	n.state = stateDetached
	rejoin := n.rejoinProbe
	for _, id := range n.memberOrder {
		m := n.members[id]
		if n.rejoinProbe && !m.pingSentAt.IsZero() && !m.pingSentAt.time().Before(n.probeStart) {
			m.coolUntil = stampOf(now.Add(2 * n.cfg.AttachTimeout))
		}
		m.pingSentAt = 0
	}
	n.rejoinProbe = false
	// After a rejoin's probe, those that answered holding nothing newer
	// than this node, though the stream has gone on since this node's
	// newest chunk, are most likely cut off by the same failure, their
	// own parent dead and not yet noticed: under one of them the whole
	// subtree would wait for that to be found out too (cutOffLikely).
	stale := rejoin && n.cutOffLikely(now) && now.Sub(n.newAt) >= 2*n.cfg.ChunkInterval
	for _, m := range n.ranked(now) {
		if stale && !m.heldAt.time().Before(n.probeStart) && m.held <= n.held() {
			continue
		}
		n.attach(now, m, 0)
		return
	}
	// Nobody to ask: the broadcaster always answers (with a redirect if full).
	if root := n.members[n.cfg.Root.ID]; root != nil && now.Sub(n.rootTriedAt) >= n.cfg.AttachTimeout/2 && !now.Before(root.bannedUntil.time()) {
		n.rootTriedAt = now
		n.attach(now, root, 0)
	}
}

func (n *Machine) attach(now time.Time, m *member, flags uint32) {
	if m.info.ID == n.cfg.Root.ID {
		n.rootTriedAt = now
	}
	n.attachTo = m.info.ID
	n.attachDeadline = now.Add(n.cfg.AttachTimeout)
	if flags&AttachImprove != 0 {
		n.moving = true
	} else {
		n.state = stateAttaching
	}
	var seq uint64
	if n.haveAny {
		seq = n.next + 1
	}
	var lost PeerID
	if !n.lostAt.IsZero() {
		lost = n.lostParent
		if n.lostWithheld {
			flags |= AttachWithheld
		}
	}
	var depth uint32
	if flags&AttachClimb != 0 {
		depth = uint32(n.depth())
	}
	n.send(m.info, &Message{Type: MsgAttach, Seq: seq, Capacity: uint32(n.cfg.Slots), Free: n.free(), Addrs: n.cfg.Self.Addrs, Flags: flags, Lost: lost, Depth: depth})
}

func (n *Machine) attachFailed(now time.Time) {
	if m := n.members[n.attachTo]; m != nil {
		m.coolUntil = stampOf(now.Add(2 * n.cfg.AttachTimeout))
	}
	if n.moving {
		n.cancelMove(now)
		return
	}
	n.attachTo = ""
	n.state = stateDetached
	n.join(now)
}

func (n *Machine) cancelMove(now time.Time) {
	if m := n.members[n.attachTo]; m != nil {
		m.coolUntil = stampOf(now.Add(n.cfg.ImproveInterval))
	}
	n.moving = false
	n.attachTo = ""
	if n.handedOver {
		n.handedOver = false
		if n.welcomed {
			// A welcomer handed this node on and still feeds it: ask it
			// again (it hands it on elsewhere, later) rather than name it
			// as lost to its parent.
			var seq uint64
			if n.haveAny {
				seq = n.next + 1
			}
			n.send(n.parent, &Message{Type: MsgAttach, Seq: seq, Capacity: uint32(n.cfg.Slots), Free: n.free(), Addrs: n.cfg.Self.Addrs})
			return
		}
		// The parent gave this node's slot away: find another.
		n.loseParent(now, LossLeft, nil)
	}
}

// ping sends a member an RTT probe. The time it carries is only a nonce
// that the pong must echo: the RTT is measured here, from pingAt.
func (n *Machine) ping(now time.Time, m *member) {
	m.pingSentAt, m.pingAt = stampOf(now), stampOf(now)
	n.send(m.info, &Message{Type: MsgPing, Time: m.pingAt.time().UnixNano()}) // the nonce the pong must echo
}

// stepPing answers an RTT probe with this node's place in the tree. A
// rejoining node's ping names the parent it lost, as its attach would, so
// that a grandparent frees that slot before it answers. To one of its own
// ancestors (a node that lost its parent and probes everyone it knows,
// its own subtree included) the node answers as out of the tree: adopting
// an ancestor would close a loop, and it would refuse the attach anyway.
func (n *Machine) stepPing(now time.Time, from PeerID, m *Message) {
	if m.Lost != "" && n.state == stateAttached {
		n.believeLost(now, m.Lost)
	}
	d, free := uint32(noDepth), uint32(0)
	if n.state == stateAttached && !n.inPath(from) && n.parentOutSince.IsZero() {
		d, free = uint32(n.depth()), n.freeFor(now, from)
	}
	n.send(n.infoOf(from), &Message{Type: MsgPong, Time: m.Time, Depth: d, Free: free, Seq: n.held()})
}

// stepPong takes in the answer to a ping. The RTT is this node's own
// measure (a pong that does not echo our last ping to that peer is
// ignored); a pong whose claims cannot be true (depth 0 from anyone but the
// broadcaster) is taken for a lie: the peer keeps its RTT but not the place
// it claims.
func (n *Machine) stepPong(now time.Time, from PeerID, p *Message) {
	n.childAnswered(now, from, p)
	m := n.members[from]
	if m == nil || m.pingAt.IsZero() || p.Time != m.pingAt.time().UnixNano() {
		return
	}
	m.rtt = max(now.Sub(m.pingAt.time()), time.Microsecond)
	m.held, m.heldAt = p.Seq, stampOf(now)
	m.pingSentAt, m.pingAt = 0, 0
	switch {
	case p.Depth == 0 && from != n.cfg.Root.ID:
		m.depth, m.free = noDepth, 0
	default:
		m.depth, m.free = min(p.Depth, noDepth), p.Free
		if p.Depth < noDepth {
			n.hearEdge(now, p.Seq)
		}
	}
	if n.state != stateProbing {
		return
	}
	if n.rejoinProbe && n.rejoinPick(now, false) {
		return
	}
	for _, id := range n.memberOrder {
		if !n.members[id].pingSentAt.IsZero() {
			return // still waiting for others
		}
	}
	n.choose(now)
}

func (n *Machine) stepRedirect(now time.Time, from PeerID, m *Message) {
	if from != n.attachTo {
		return
	}
	if mb := n.members[from]; mb != nil {
		mb.free = 0
		mb.coolUntil = stampOf(now.Add(n.cfg.AttachTimeout))
	}
	if n.moving {
		n.cancelMove(now)
		n.climbTo(now, m.Candidates)
		return
	}
	n.attachTo = ""
	n.state = stateDetached
	rejoin := !n.lostAt.IsZero()
	for _, c := range m.Candidates {
		if c.ID == n.cfg.Self.ID || n.childIndex(c.ID) >= 0 {
			continue
		}
		n.learn(c.PeerInfo, c.Depth, c.Free, true)
		if rejoin {
			n.hints = append(n.hints, c.ID)
		}
	}
	n.join(now)
}

// climbTo follows an ancestor's answer to a climb: the first member it
// named with room at least climbGain levels above this node. A plain
// improvement move, which the member takes only if it still has room.
func (n *Machine) climbTo(now time.Time, room []Candidate) {
	d := uint32(n.depth())
	for _, c := range room {
		// At least climbGain levels above this node (checked without adding
		// to a peer's number, which could wrap).
		if c.ID == n.cfg.Self.ID || c.ID == n.parent.ID || n.childIndex(c.ID) >= 0 || d < 1+climbGain || c.Depth > d-1-climbGain {
			continue
		}
		m := n.learn(c.PeerInfo, c.Depth, c.Free, true)
		if m == nil || now.Before(m.coolUntil.time()) || now.Before(m.bannedUntil.time()) || now.Before(m.suspectUntil.time()) {
			continue
		}
		n.attach(now, m, AttachImprove)
		return
	}
}

func (n *Machine) stepAccept(now time.Time, from PeerID, m *Message) {
	if from != n.attachTo {
		// A late accept from a member we gave up on: undo it.
		if n.parent.ID != from || n.state != stateAttached {
			n.send(n.infoOf(from), &Message{Type: MsgLeave})
		}
		return
	}
	for _, p := range m.Path {
		if p.ID == n.cfg.Self.ID || n.childIndex(p.ID) >= 0 {
			// Adopted under our own subtree: leave at once.
			n.event(Event{Type: EvLoopRefused, Peer: from})
			n.send(n.infoOf(from), &Message{Type: MsgLeave})
			n.attachFailed(now)
			return
		}
	}
	old := n.parent
	wasAttached := n.state == stateAttached
	moved := n.moving
	if moved && wasAttached && old.ID != "" && old.ID != from {
		// Make before break, and check: the old parent is left once the
		// new one has delivered a chunk (checkMove, confirmMove); until
		// then it still feeds this node, which goes back to it if the new
		// one withholds.
		n.confirmMove()
		n.prevParent, n.prevPath, n.movedAt = old, slices.Clone(n.path), now
	}
	n.moving = false
	n.attachTo = ""
	n.state = stateAttached
	n.parent = n.infoOf(from)
	n.parentHeard = now
	n.parentHeld, n.parentHeld0, n.parentChunks, n.attachedAt = 0, 0, 0, now
	n.chunksSince = 0 // a receipt counts what came from its parent only
	n.parentOutSince = time.Time{}
	n.hints = nil
	rejoin := !n.lostAt.IsZero()
	n.lostAt = time.Time{}
	n.lostWithheld = false
	n.slowSince, n.slowAt = time.Time{}, time.Time{}
	n.newAt = maxTime(n.newAt, now) // a new parent gets WithholdTimeout to deliver
	n.everAttached = true
	n.welcomed = m.Flags&AcceptWelcome != 0
	if moved && wasAttached {
		n.stats.Moves++
	}
	if rejoin {
		n.stats.Rejoins++
	}
	n.setPath(now, m.Path)
	n.event(Event{Type: EvAttached, Peer: from, Depth: n.depth(), Rejoin: rejoin, Moved: moved})
	early := n.cfg.EarlyMoveSlots > 0 && n.cfg.Slots >= n.cfg.EarlyMoveSlots && n.depth() >= 3
	if (n.depth() >= climbDepth || early) && n.cfg.ImproveInterval > 0 {
		// Deep, as joiners in a flash crowd end up: look for a shallower
		// place soon rather than at the next improvement.
		n.nextImprove = minTime(n.nextImprove, now.Add(n.jitter(n.cfg.ImproveInterval/16)))
	}
	n.sendStatus(now)
}

// stepPath takes in the parent's path message: a new ancestor path, or a
// heartbeat that says whether the parent is in the tree itself.
func (n *Machine) stepPath(now time.Time, from PeerID, m *Message) {
	if n.state != stateAttached || n.isRoot || from != n.parent.ID {
		return
	}
	n.parentHeard = now
	n.parentHeld = m.Seq
	if n.parentHeld0 == 0 {
		n.parentHeld0 = m.Seq
	}
	// A parent that is itself out of the tree for long cannot feed us:
	// after 2×ParentTimeout we rejoin on our own rather than starve with the
	// whole subtree.
	switch {
	case m.Depth != noDepth:
		n.parentOutSince = time.Time{}
	case n.parentOutSince.IsZero():
		n.parentOutSince = now
	case now.Sub(n.parentOutSince) > 2*n.cfg.ParentTimeout:
		n.send(n.parent, &Message{Type: MsgLeave})
		n.loseParent(now, LossSilent, nil)
		return
	}
	if len(m.Path) > 0 {
		n.setPath(now, m.Path)
	}
}

// setPath records a new ancestor path and tells the children theirs.
func (n *Machine) setPath(now time.Time, path []PeerInfo) {
	for _, p := range path {
		if p.ID == n.cfg.Self.ID {
			n.send(n.parent, &Message{Type: MsgLeave})
			n.loseParent(now, LossLoop, nil)
			return
		}
	}
	n.path = append(n.path[:0], path...)
	n.statusDirty = true
	for i, p := range path {
		if mb := n.learn(p, uint32(i), 0, false); mb != nil && mb.depth == noDepth {
			mb.depth = uint32(i)
		} else if mb != nil {
			mb.depth = uint32(i)
		}
	}
	if len(n.children) > 0 {
		mine := n.myPath()
		for _, c := range n.children {
			c.sentAt = now
			n.send(c.info, &Message{Type: MsgPath, Path: mine, Depth: uint32(n.depth())})
		}
	}
}

// loseParent starts a rejoin. A parent that left and named where to go
// is taken at its word: its first hint is asked at once. Otherwise the
// hints, the ancestors from the nearest up (the grandparent has just lost
// a child, so it has a free slot) and the best of the others known are
// pinged together and the first good answer wins (probeRejoin).
func (n *Machine) loseParent(now time.Time, why LossReason, hints []PeerID) {
	if n.prevParent.ID != "" {
		n.send(n.prevParent, &Message{Type: MsgLeave}) // a move under way: give it up too
		n.prevParent, n.prevPath = PeerInfo{}, nil
	}
	if why != LossWithheld && why != LossForged && why != LossPadded {
		n.lostWithheld = false
	}
	old := n.parent
	if m := n.members[old.ID]; m != nil && why != LossLoop {
		m.coolUntil = stampOf(now.Add(2 * n.cfg.ParentTimeout))
		m.depth = noDepth
	}
	n.event(Event{Type: EvParentLost, Peer: old.ID, Loss: why})
	if n.lostAt.IsZero() {
		n.lostAt = now
	}
	n.lostParent = old.ID
	n.parent = PeerInfo{}
	n.hints = append(n.hints[:0], hints...)
	n.leftHint = why == LossLeft && len(hints) > 0
	for i := len(n.path) - 2; i >= 0; i-- {
		n.hints = append(n.hints, n.path[i].ID)
	}
	if n.moving {
		// A move was under way: its target may yet accept; let it.
		n.moving = false
		n.state = stateAttaching
		return
	}
	n.state = stateDetached
	n.attachTo = ""
	n.join(now)
}
