// Rejoining after a parent was lost: the hints and the other members
// known, pinged all at once, and the first good answer asked to adopt.

package mesh

import "time"

// probeRejoin starts a rejoin's probe: the hints (where a redirect sent
// this node, then its ancestors from the nearest up) and the best ranked
// other members, up to maxRejoinProbes, pinged all at once. Each ping
// names the lost parent, as an attach does, so that a grandparent that has
// not noticed the loss frees that slot before it answers. The first to
// answer well is asked to adopt this node (rejoinPick).
//
// After a mass failure many of those a node knows are dead. Asked one
// after the other, as the hints were, each dead one cost an AttachTimeout
// (1 s), and an orphan of a 30% kill took up to 13 s to get back; pinged
// together, the dead cost one ProbeTimeout at most, and those that stayed
// silent are not asked again for a while (choose). It reports whether it
// pinged anyone.
func (n *Machine) probeRejoin(now time.Time) bool {
	// The broadcaster only as the grandparent: its upload is for its
	// children, not for the pongs of every orphan of a mass failure.
	var gp PeerID
	if d := n.depth(); d >= 2 {
		gp = n.path[d-2].ID
	}
	probes := 0
	n.probeOrder = n.probeOrder[:0]
	ping := func(id PeerID) {
		m := n.members[id]
		if probes >= maxRejoinProbes || m == nil || !usableAt(m, now) || n.childIndex(id) >= 0 ||
			id == n.lostParent || id == n.cfg.Root.ID && id != gp || !m.pingSentAt.IsZero() && !m.pingSentAt.Before(now) {
			return
		}
		m.pingSentAt, m.pingAt = now, now
		n.send(m.info, &Message{Type: MsgPing, Time: now.UnixNano(), Lost: n.lostParent})
		n.probeOrder = append(n.probeOrder, id)
		probes++
	}
	for _, id := range n.hints {
		ping(id)
	}
	n.hints = n.hints[:0]
	n.probeHints = probes
	for _, m := range n.ranked(now) {
		ping(m.info.ID)
	}
	if probes == 0 {
		return false
	}
	n.state = stateProbing
	n.rejoinProbe = true
	n.probeStart = now
	n.probeDeadline = now.Add(n.cfg.ProbeTimeout)
	return true
}

// rejoinPick asks the first member of a rejoin's probe that answered well
// to adopt this node: from the tree (not out of it, which is how a member
// answers one of its own ancestors: no loop), with a free slot, holding
// something newer than this node (one that does not was most likely cut
// off by the same failure, its own parent dead and not yet noticed), and,
// unless a hint, no deeper than this node was (a deeper one may be in its
// own subtree with a path that does not show it yet). Not waiting for the
// others matters: after a mass failure some never answer. At the probe's
// deadline (final), when nobody had room, it asks the first hint that
// answered from the tree, full: its redirect names room it knows of now.
// It reports whether it asked anyone.
func (n *Machine) rejoinPick(now time.Time, final bool) bool {
	var full *member
	for i, id := range n.probeOrder {
		m := n.members[id]
		if m == nil || !m.pingSentAt.IsZero() || m.depth >= noDepth || !usableAt(m, now) ||
			n.haveAny && m.held <= n.held() || i >= n.probeHints && m.depth > uint32(n.depth()) {
			continue
		}
		if m.free > 0 {
			n.attachProbed(now, m)
			return true
		}
		if full == nil && i < n.probeHints {
			full = m
		}
	}
	if final && full != nil {
		n.attachProbed(now, full)
		return true
	}
	return false
}

// attachProbed ends a rejoin's probe by asking m to adopt this node.
func (n *Machine) attachProbed(now time.Time, m *member) {
	n.state = stateDetached
	n.rejoinProbe = false
	for _, id := range n.memberOrder {
		n.members[id].pingSentAt = time.Time{}
	}
	n.attach(now, m, 0)
}

// usableAt reports whether a member may be asked to adopt this node: not
// cooling down after a failed attempt, banned or suspected of withholding.
func usableAt(m *member, now time.Time) bool {
	return !now.Before(m.coolUntil) && !now.Before(m.bannedUntil) && !now.Before(m.suspectUntil)
}
