// Improving: the rate-limited, make-before-break moves towards the root or
// to a nearer parent.

package mesh

import "time"

// improve makes at most one move: a node with spare slots tries to move up
// under a shallower ancestor (which may displace a slotless leaf for it);
// otherwise a node moves to a member with room that is clearly nearer than
// its parent and no deeper. Both are rate-limited by ImproveInterval and
// need a real gain, so the tree settles instead of oscillating.
func (n *Machine) improve(now time.Time) {
	if n.moving || n.state != stateAttached || n.prevParent.ID != "" {
		return
	}
	d := n.depth()
	if n.cfg.Slots >= 2 && n.free() >= 1 && d >= 2 {
		target := n.path[n.cfg.Rand.IntN(d-1)]
		if m := n.members[target.ID]; m != nil && !now.Before(m.coolUntil.time()) {
			n.attach(now, m, AttachImprove)
			return
		}
	}
	if d >= climbDepth {
		// Deep: ask an ancestor (not the broadcaster, whose upload is for
		// its children; not the parent) for a place higher up.
		target := n.path[1+n.cfg.Rand.IntN(d-2)]
		if m := n.members[target.ID]; m != nil && !now.Before(m.coolUntil.time()) {
			n.attach(now, m, AttachImprove|AttachClimb)
			return
		}
	}
	parent := n.members[n.parent.ID]
	if parent == nil {
		return
	}
	if parent.rtt == 0 {
		n.ping(now, parent)
		return
	}
	var best *member
	for _, id := range n.memberOrder {
		m := n.members[id]
		if id == n.parent.ID || m.depth >= noDepth || m.depth >= uint32(d) || m.free == 0 ||
			now.Before(m.coolUntil.time()) || now.Before(m.bannedUntil.time()) || now.Before(m.suspectUntil.time()) || n.childIndex(id) >= 0 {
			continue
		}
		if m.rtt == 0 {
			if m.pingSentAt.IsZero() || now.Sub(m.pingSentAt.time()) > n.cfg.ImproveInterval {
				n.ping(now, m)
			}
			continue
		}
		if m.rtt*10 < parent.rtt*6 && parent.rtt-m.rtt >= improveMinGap && (best == nil || m.rtt < best.rtt) {
			best = m
		}
	}
	if best != nil {
		n.attach(now, best, AttachImprove)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
