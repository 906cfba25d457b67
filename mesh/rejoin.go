// Rejoining after a parent was lost: the hints and the other members
// known, pinged all at once, and the first good answer asked to adopt.

package mesh

import (
	"slices"
	"time"
)

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
			id == n.lostParent || id == n.cfg.Root.ID && id != gp || !m.pingSentAt.IsZero() && !m.pingSentAt.time().Before(now) {
			return
		}
		m.pingSentAt, m.pingAt = stampOf(now), stampOf(now)
		n.send(m.info, &Message{Type: MsgPing, Time: m.pingAt.time().UnixNano(), Lost: n.lostParent})
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
// others matters: after a mass failure some never answer. While a failure
// can still be unnoticed (cutOffLikely), one with room but more than
// freshSlack chunks behind the newest this node has heard (the chat
// beat's edge, a fresher answer) is not taken at once: it may sit in a
// fragment cut off a little later than this node, and a fresher one may
// still answer. At the probe's deadline (final) the freshest of those is
// asked; when nobody had room, the first hint that answered from the
// tree, full: its redirect names room it knows of now. (A 10,000-viewer
// kill, seeds 1-5: the longest stall after the kill went from 3.4, 1.4,
// 5.6, 1.0, 7.0 s to 1.6, 2.0, 4.4, 1.4, 1.2 s; with 500 sybils and 10%
// churn, continuity 0.9990 to 0.9995 and pulls 26,690 to 10,399.) It
// reports whether it asked anyone.
func (n *Machine) rejoinPick(now time.Time, final bool) bool {
	var full, stale *member
	cut := n.cutOffLikely(now)
	for i, id := range n.probeOrder {
		m := n.members[id]
		if m == nil || !m.pingSentAt.IsZero() || m.depth >= noDepth || !usableAt(m, now) ||
			cut && m.held <= n.held() || i >= n.probeHints && m.depth > uint32(n.depth()) {
			continue
		}
		if m.free > 0 {
			if cut && addSat64(m.held, freshSlack) < n.edge {
				// Newer than this node but well behind the newest heard:
				// most likely in a fragment cut off by the same failure
				// a little later. Taken only at the deadline, the
				// freshest of them.
				if stale == nil || m.held > stale.held {
					stale = m
				}
				continue
			}
			n.attachProbed(now, m)
			return true
		}
		if full == nil && i < n.probeHints {
			full = m
		}
	}
	if final && stale != nil {
		n.attachProbed(now, stale)
		return true
	}
	if final && full != nil {
		n.attachProbed(now, full)
		return true
	}
	return false
}

// freshSlack is how far behind the newest chunk heard a member that answers a
// rejoin's probe may hold and still be taken at once.
const freshSlack = 2

// cutOffLikely reports whether a member that answers a rejoin's probe
// holding nothing newer than this node is to be taken for cut off by the
// same failure: only while such a failure can still be unnoticed below it
// (a member whose parent died answers from the tree until its own
// ParentTimeout, and its children until its heartbeat says so), or when
// the stream is known to have gone on past this node (edgeAhead). Past
// that, nobody holding anything newer means the stream itself has paused:
// an encoder restarting, a broadcaster that stopped. Passing everyone over
// then found no parent for as long as the pause lasted; a real node sat
// detached 7 s after its broadcaster stopped.
func (n *Machine) cutOffLikely(now time.Time) bool {
	return n.haveAny && (now.Sub(n.newAt) < cutOffWindow*n.cfg.ParentTimeout || n.edgeAhead(now))
}

// attachProbed ends a rejoin's probe by asking m to adopt this node.
func (n *Machine) attachProbed(now time.Time, m *member) {
	n.state = stateDetached
	n.rejoinProbe = false
	for _, id := range n.memberOrder {
		n.members[id].pingSentAt = 0
	}
	n.attach(now, m, 0)
}

// usableAt reports whether a member may be asked to adopt this node: not
// cooling down after a failed attempt, banned or suspected of withholding.
func usableAt(m *member, now time.Time) bool {
	return !now.Before(m.coolUntil.time()) && !now.Before(m.bannedUntil.time()) && !now.Before(m.suspectUntil.time())
}

// keptSlot is a slot a parent keeps, for a while, for the heir of a child
// it lost: the child's own child with the largest subtree, as its receipts
// said. Within a mass failure an orphan's grandparent is the one place it
// knows to have a slot free (the dead child's), and every orphan of the
// failure that knows the grandparent asks it too: before, a slot freed at a
// depth-1 relay went within milliseconds to whichever stranger asked
// first, and the dead relay's own children, 16-slot relays with subtrees
// of hundreds, took 1.5 s to find room seven levels down.
type keptSlot struct {
	lost    PeerID
	heir    PeerID
	taken   PeerID    // who was adopted into it; "" while it is kept
	kin     []PeerID  // the lost child's other children, as its receipts said
	proven  []PeerID  // those of them the lost child vouched for (they fed their own)
	heirEnd time.Time // until then the slot is the heir's alone; then any of kin's too
	until   time.Time
}

// maxKept bounds the slots kept at once.
const maxKept = 4

// keepSlotFor keeps the slot of a child being removed as lost (its
// connection down, or named lost by an orphan while silent: when its
// orphans are looking) for its heir, if it had one that relays to others:
// its child with the largest subtree. The heir has the slot alone for a
// ProbeTimeout, the lost child's other children from then on, and it is
// free to anyone again ParentTimeout + ProbeTimeout after the loss. (Not
// when a child is dropped for its silence at ChildTimeout: its orphans
// noticed long before and are placed already. A peer's subtree claim can
// make it the heir; what that buys is one slot held for 1.2 s at most.)
func (n *Machine) keepSlotFor(now time.Time, c *child) {
	var heir PeerID
	var kin []PeerID
	best := uint32(1)
	for i := range c.reporters {
		r := &c.reporters[i]
		if now.Sub(r.at) > n.receiptWindow() {
			continue
		}
		kin = append(kin, r.from)
		if r.subtree > best {
			heir, best = r.from, r.subtree
		}
	}
	if heir == "" {
		return
	}
	var proven []PeerID
	if c.proven > 0 && !n.caught(c, now) {
		for _, v := range c.vouches {
			if v.proven > 0 {
				proven = append(proven, v.id)
			}
		}
	}
	n.kept = slices.DeleteFunc(n.kept, func(k keptSlot) bool { return !now.Before(k.until) || k.heir == heir })
	if len(n.kept) >= maxKept {
		return
	}
	n.kept = append(n.kept, keptSlot{lost: c.info.ID, heir: heir, kin: kin, proven: proven,
		heirEnd: now.Add(n.cfg.ProbeTimeout), until: now.Add(n.cfg.ParentTimeout + n.cfg.ProbeTimeout)})
	n.statusDirty = true
}

// keptCount is how many slots are kept for heirs now, heir excepted.
func (n *Machine) keptCount(now time.Time, except PeerID) uint32 {
	k := uint32(0)
	for _, s := range n.kept {
		if s.taken == "" && now.Before(s.until) && s.heir != except && (now.Before(s.heirEnd) || !slices.Contains(s.kin, except)) {
			k++
		}
	}
	return k
}

// freeFor is how many free slots this node offers a peer: the slots kept
// for heirs are free only to them.
func (n *Machine) freeFor(now time.Time, id PeerID) uint32 {
	f, k := n.free(), n.keptCount(now, id)
	if f <= k {
		return 0
	}
	return f - k
}

// heirCame gives a peer that has been adopted the slot kept for it, if
// any: its own as the heir, or, once the heir's turn is over, one kept for
// its lost parent.
//
// The record stays until the slot would have been free to anyone: the
// lost child's other children that ask later are sent to the one that took
// it (heirOf), the subtree's old top, which can make room for one that
// relays more than one of its children (displaceFor) a level higher than
// anywhere else they would find.
func (n *Machine) heirCame(now time.Time, id PeerID) {
	i := slices.IndexFunc(n.kept, func(k keptSlot) bool { return k.taken == "" && now.Before(k.until) && k.heir == id })
	if i < 0 {
		i = slices.IndexFunc(n.kept, func(k keptSlot) bool {
			return k.taken == "" && now.Before(k.until) && !now.Before(k.heirEnd) && slices.Contains(k.kin, id)
		})
	}
	if i >= 0 {
		n.kept[i].taken = id
	}
}

// heirOf returns the child that took the slot kept after lost, if it is
// still a child here, the slot's time is not over, it stands accused of
// nothing, and it was seen to feed its own children: the lost child had
// vouched for it, or one of its children said here lately that it is fed.
// Orphans are sent to a proven relay only, never to a peer that merely
// claimed a subtree (a withholder that took the slot would take them all:
// without this check the 500-sybil run's continuity fell from 0.9984 to
// 0.9872; with the lost child's vouches alone, which a status carries for
// four children at most, the kill run's longest stall was 3.4 s).
func (n *Machine) heirOf(now time.Time, lost PeerID) (PeerInfo, bool) {
	for _, k := range n.kept {
		if k.lost == lost && k.taken != "" && now.Before(k.until) {
			if i := n.childIndex(k.taken); i >= 0 && !n.children[i].away() &&
				(slices.Contains(k.proven, k.taken) || n.feeding(n.children[i], now)) && !n.caught(n.children[i], now) {
				return n.children[i].info, true
			}
		}
	}
	return PeerInfo{}, false
}
