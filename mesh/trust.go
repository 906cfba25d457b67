// Trust: capacity earned, not claimed. Receipts from grandchildren tell a
// node which of its children really feed theirs; the capacity it believes
// of a child, the room it advertises below and who may displace whom
// follow from them. Edges (the broadcast's progress heard from others) let
// a child notice a parent that withholds the stream.

package mesh

import (
	"math"
	"slices"
	"time"
)

const (
	// trialSlots is the capacity believed of a relay that has fed nobody
	// yet: a newcomer is handed this many children before more. (One made
	// the 10,000-viewer tree settle two levels deeper than two did; four
	// gave sybils more victims for no depth gained.)
	trialSlots = 2
	// trialPeriod, in receipt intervals, is how long a relay child of the
	// broadcaster may go without proving anything before any relay may
	// take its slot.
	trialPeriod = 5
	// maxReporters bounds the receipts kept per child.
	maxReporters = maxListLen
	// edgeSlack: a grandparent answers a receipt with its edge when the
	// grandchild is this many chunks behind it or more: enough behind for
	// the edge to matter (withholdSlack), which a fed one rarely is.
	edgeSlack = withholdSlack + 1
	// withholdSlack: a child takes its parent for withholding only when the
	// edge it heard is more than this many chunks beyond what it holds.
	withholdSlack = 3
	// maxStrangerEdges bounds the edges sent a second to peers that are
	// not grandchildren.
	maxStrangerEdges = 200
	// slowSlack: a grandparent that holds this many chunks more than this
	// node, on two receipts in a row, says the parent feeds it too slowly
	// (checkSlow): a second behind, with a 2 s playout, is where a viewer
	// is about to stall.
	slowSlack = 5
	// firstChunkWait, in chunk intervals, is how long a new parent may send
	// no chunk at all (an honest one backfills the init chunk at once)
	// while its heartbeats say it holds newer ones than this node.
	firstChunkWait = 3
)

// receipt is what a grandchild last said through its parent (one of our
// children).
type receipt struct {
	from    PeerID
	at      time.Time
	subtree uint32
	good    bool // it held what we hold, give or take goodSlack chunks
}

// held returns 1 + the highest sequence number held, 0 if none: what
// receipts, pongs and edges carry.
func (n *Machine) held() uint64 {
	if !n.haveAny {
		return 0
	}
	return n.highest + 1
}

// goodSlack is how far behind this node a grandchild may be and still be
// fed: a second's worth of chunks, at least three.
func (n *Machine) goodSlack() uint64 {
	return max(3, uint64(time.Second/max(n.cfg.ChunkInterval, time.Millisecond)))
}

func (n *Machine) receiptWindow() time.Duration { return 3 * n.cfg.ReceiptInterval }

// caught reports whether a child stands accused of withholding (and no
// independent receipt has cleared it since).
func (n *Machine) caught(c *child, now time.Time) bool {
	return !c.caughtAt.IsZero() && now.Sub(c.caughtAt) < n.cfg.BanDuration
}

// believed is the capacity this node believes of a child: what it claims,
// but no more than twice what it was seen to feed, and trialSlots before
// that; nothing while it stands accused of withholding.
func (n *Machine) believed(c *child, now time.Time) uint32 {
	if c.capacity == 0 || n.caught(c, now) {
		return 0
	}
	return min(c.capacity, max(trialSlots, mulSat32(c.proven, 2)))
}

// used is how many children a child has as far as this node can tell: what
// it claims, or how many of them sent receipts lately, whichever is more.
func (n *Machine) used(c *child, now time.Time) uint32 {
	claimed := uint32(0)
	if c.capacity > c.free {
		claimed = c.capacity - c.free
	}
	return max(claimed, uint32(n.activeReporters(c, now)))
}

// believedFree is the room this node believes a child has.
func (n *Machine) believedFree(c *child, now time.Time) uint32 {
	b, u := n.believed(c, now), n.used(c, now)
	if b <= u {
		return 0
	}
	return min(c.free, b-u)
}

func (n *Machine) activeReporters(c *child, now time.Time) int {
	k := 0
	for i := range c.reporters {
		if now.Sub(c.reporters[i].at) <= n.receiptWindow() {
			k++
		}
	}
	return k
}

// suspect reports whether a peer was named as a withholder lately.
func (n *Machine) suspect(id PeerID, now time.Time) bool {
	if now.After(n.suspectEnd) {
		return false // nobody is suspect: skip the lookup
	}
	m := n.members[id]
	return m != nil && now.Before(m.suspectUntil.time())
}

// boundSubtree is a child's subtree as far as this node can know it: what
// it claims, but at most itself plus what its children's receipts say of
// theirs (a child it claims that has not sent one yet counts as one), each
// sum saturating. A child cannot make the audience bigger than the
// receipts of real peers below it.
func (n *Machine) boundSubtree(c *child, now time.Time) uint32 {
	sum := uint32(1)
	active := 0
	for i := range c.reporters {
		if r := &c.reporters[i]; now.Sub(r.at) <= n.receiptWindow() {
			sum = addSat32(sum, max(r.subtree, 1))
			active++
		}
	}
	if u := n.used(c, now); u > uint32(active) {
		sum = addSat32(sum, u-uint32(active))
	}
	return min(max(c.claimed, 1), sum)
}

// displaceable reports whether a child may give its slot to a joiner
// that claims capacity slots, of which this node believes proof (vouched).
// A child caught withholding always may, and elsewhere than on the
// broadcaster any child that claims fewer (the handover checks the claim).
// The broadcaster's slots are kept for relays that feed someone: there a
// joiner's claim counts only against a child that feeds nobody (a
// zero-slot one, one on trial, one idle after its trial); against a relay
// whose children's receipts say it feeds them only capacity proven and
// vouched for counts.
func (n *Machine) displaceable(now time.Time, c *child, claim, vouched uint32) bool {
	switch {
	case n.caught(c, now):
		return true
	case !n.isRoot:
		return claim > c.capacity
	case !n.feeding(c, now):
		return claim > c.capacity || n.idleTrial(c, now)
	}
	return min(claim, mulSat32(vouched, 2)) > c.capacity
}

// feeding reports whether one of a child's children said lately that it
// is fed.
func (n *Machine) feeding(c *child, now time.Time) bool {
	for i := range c.reporters {
		if r := &c.reporters[i]; r.good && now.Sub(r.at) <= n.receiptWindow() {
			return true
		}
	}
	return false
}

// vouched is the capacity a joiner proved under one of this node's
// children, as that child says (its status's vouches): believed only of a
// child that feeds its own children and stands accused of nothing, so that
// a withholder cannot vouch for its accomplice.
func (n *Machine) vouched(now time.Time, id PeerID) uint32 {
	var best uint32
	for _, c := range n.children {
		if c.proven == 0 || n.caught(c, now) || c.away() {
			continue
		}
		for _, v := range c.vouches {
			if v.id == id {
				best = max(best, v.proven)
			}
		}
	}
	if now.Before(n.pastVouchesUntil) {
		for _, v := range n.pastVouches {
			if v.id == id {
				best = max(best, v.proven)
			}
		}
	}
	return best
}

// vouches lists the children that proved capacity here, for the parent
// (a status's Vouches), the most proven first.
func (n *Machine) vouches() []Candidate {
	var buf roomBuf // most of the list is dropped: built on the stack (see roomBuf)
	out := buf[:0]
	d := uint32(n.depth() + 1)
	for _, c := range n.children {
		if c.proven > 0 && c.caughtAt.IsZero() && !c.away() {
			out = append(out, Candidate{PeerInfo: c.info, Depth: d, Proven: c.proven})
		}
	}
	slices.SortStableFunc(out, func(a, b Candidate) int { return int(b.Proven) - int(a.Proven) })
	return keepRoom(out, maxRoom)
}

func sameVouches(a, b []Candidate) bool {
	return slices.EqualFunc(a, b, func(x, y Candidate) bool { return x.ID == y.ID && x.Proven == y.Proven })
}

// rootAdmits says whether the broadcaster lets a joiner in (into a free
// slot, or in place of a child that has not been caught): a slotless one
// or a relay vouched for always, an unvouched relay only while none of its
// children is on trial (a relay, not caught, that feeds nobody yet and has
// not had its trialPeriod). So
// its slots are kept for relays that feed someone: fresh identities,
// whatever they claim, hold one slot at most, and only until they are
// caught. (Allowing two on trial cut the start-up of a 10,000-viewer
// flash crowd by a little but let 500 sybils take two slots of three:
// continuity 0.974 instead of 0.999 over its first minute.)
func (n *Machine) rootAdmits(now time.Time, claim, vouched uint32) bool {
	if !n.isRoot || claim == 0 || vouched > 0 {
		return true
	}
	for _, c := range n.children {
		if c.capacity > 0 && !c.away() && !n.caught(c, now) && !n.feeding(c, now) && !n.idleTrial(c, now) {
			return false
		}
	}
	return true
}

// idleTrial reports whether a relay child has had its trial without
// proving anything: adopted more than trialPeriod ago, and no child of its
// ever said it was fed. On the broadcaster such a child may be displaced by
// any relay, whatever it claims: the broadcaster's slots are kept for
// relays that feed someone, and a fresh identity that claims the most and
// feeds nobody does not hold one.
func (n *Machine) idleTrial(c *child, now time.Time) bool {
	return c.capacity > 0 && c.proven == 0 && now.Sub(c.addedAt) > trialPeriod*n.cfg.ReceiptInterval
}

// --- receipts: the grandchild's side ---

// maybeSendReceipt tells the grandparent, every ReceiptInterval and at
// once when the grandparent changes, what came through the parent; when
// nothing new has come for half of WithholdTimeout it asks sooner (the
// answer, an edge, says whether the broadcast went on meanwhile) and pings
// the ancestor above the grandparent too.
func (n *Machine) maybeSendReceipt(now time.Time) {
	if n.isRoot || n.state != stateAttached || len(n.path) < 2 {
		return
	}
	gp := n.path[len(n.path)-2]
	starving := now.Sub(n.newAt) >= n.cfg.WithholdTimeout/2 && n.parent.ID != n.cfg.Root.ID
	switch {
	case gp.ID != n.receiptTo, now.Sub(n.receiptAt) >= n.cfg.ReceiptInterval:
	case starving && now.Sub(n.receiptAt) >= n.cfg.WithholdTimeout/2:
		if len(n.path) >= 4 { // never the broadcaster: its upload is for its children
			if m := n.members[n.path[len(n.path)-3].ID]; m != nil && m.pingAt.IsZero() {
				n.ping(now, m)
			}
		}
	default:
		return
	}
	n.receiptAt, n.receiptTo = now, gp.ID
	n.send(gp, &Message{Type: MsgReceipt, Parent: n.parent.ID, Seq: n.held(), Count: n.chunksSince, Subtree: n.subtree()})
	n.chunksSince = 0
}

// receiptDue returns when maybeSendReceipt next has something to do (for
// NextTick), or the zero time when there is nothing to send.
//
// It is in Unix nanoseconds (NextTick asks after every input) and errs
// early while the node starves (at the probe's first moment, however
// recently a receipt went).
func (n *Machine) receiptDue() (int64, bool) {
	if n.isRoot || n.state != stateAttached || len(n.path) < 2 {
		return 0, false
	}
	if n.path[len(n.path)-2].ID != n.receiptTo {
		return math.MinInt64, true // now
	}
	due := n.receiptAt.UnixNano() + int64(n.cfg.ReceiptInterval)
	if n.parent.ID != n.cfg.Root.ID {
		due = min(due, n.newAt.UnixNano()+int64(n.cfg.WithholdTimeout/2))
	}
	return due, true
}

// --- receipts: the grandparent's side ---

// stepReceipt takes in a grandchild's receipt about one of our children:
// whether it is fed, what its subtree is. It answers with our edge when
// the grandchild is behind, so that it can tell a withholding parent from
// a quiet broadcast.
func (n *Machine) stepReceipt(now time.Time, from PeerID, m *Message) {
	if i := n.childIndex(m.Parent); i >= 0 && m.Parent != from {
		n.record(now, n.children[i], from, m)
	} else if !n.edgeBudget(now) {
		return
	}
	if h := n.held(); h > m.Seq && h-m.Seq >= edgeSlack {
		n.send(n.infoOf(from), &Message{Type: MsgEdge, Seq: h})
	}
}

// edgeBudget spends one of the edges a second sent to peers that are not
// grandchildren, if any is left.
func (n *Machine) edgeBudget(now time.Time) bool {
	if now.Sub(n.edgeReset) >= time.Second {
		n.edgeReset, n.edgesSent = now, 0
	}
	n.edgesSent++
	return n.edgesSent <= maxStrangerEdges
}

// record keeps a grandchild's receipt under its parent c and updates what
// this node believes of c.
func (n *Machine) record(now time.Time, c *child, from PeerID, m *Message) {
	// Fed: it holds what we hold, give or take goodSlack chunks, and new
	// ones came from its parent (not only from a pull elsewhere, or from a
	// parent it is leaving) unless the stream itself stood still.
	good := m.Count > 0 || now.Sub(n.newAt) >= n.cfg.ReceiptInterval
	if h := n.held(); h > m.Seq && h-m.Seq > n.goodSlack() {
		good = false
	}
	r := receipt{from: from, at: now, subtree: max(m.Subtree, 1), good: good}
	k := slices.IndexFunc(c.reporters, func(x receipt) bool { return x.from == from })
	switch {
	case k >= 0:
		c.reporters[k] = r
	case len(c.reporters) < int(min(c.capacity, maxReporters)):
		c.reporters = append(c.reporters, r)
	default:
		// Full: replace the oldest, if it has expired.
		old := 0
		for i := range c.reporters {
			if c.reporters[i].at.Before(c.reporters[old].at) {
				old = i
			}
		}
		if len(c.reporters) == 0 || now.Sub(c.reporters[old].at) <= n.receiptWindow() {
			return
		}
		c.reporters[old] = r
	}
	fed, starved := uint32(0), false
	for i := range c.reporters {
		if x := &c.reporters[i]; now.Sub(x.at) <= n.receiptWindow() {
			if x.good {
				fed++
			} else {
				starved = true
			}
		}
	}
	if starved {
		c.proven = fed // a child that starves one of its own loses what it proved
	} else {
		c.proven = max(c.proven, fed)
	}
	if good && from != c.accuser && c.caughtAt.Before(now) && !c.caughtAt.IsZero() {
		// Another child of its says it is fed: the accusation was a lie, or
		// the trouble is over.
		c.caughtAt, c.accuser = time.Time{}, ""
	}
	if sub := n.boundSubtree(c, now); sub != c.subtree {
		c.subtree = sub
		n.statusDirty = true
	}
}

// accused handles an attach that names its lost parent as a withholder.
// Nobody is redirected to that peer or pulls from it for BanDuration; if
// it is our child and the accuser one of its children that sent us
// receipts, its capacity is not believed until an independent receipt
// says it feeds someone. An accused child keeps its slot and its other
// children: an accusation alone costs an honest parent little.
func (n *Machine) accused(now time.Time, accuser, lost PeerID) {
	if mb := n.learn(n.infoOf(lost), noDepth, 0, false); mb != nil {
		mb.suspectUntil = stampOf(now.Add(n.cfg.BanDuration))
		n.suspectEnd = mb.suspectUntil.time()
	}
	i := n.childIndex(lost)
	if i < 0 {
		return
	}
	c := n.children[i]
	k := slices.IndexFunc(c.reporters, func(x receipt) bool { return x.from == accuser })
	if k < 0 {
		return
	}
	c.reporters = slices.Delete(c.reporters, k, k+1)
	c.caughtAt, c.accuser = now, accuser
	c.proven = 0
	c.subtree = n.boundSubtree(c, now)
	n.statusDirty = true
}

// --- the live edge and withholding: the child's side ---

// LiveEdge tells the node that the broadcast has reached seq (its
// broadcaster published seq-1): a hint the shell may have from a source it
// trusts, such as the broadcaster's chat beat. A node that holds much less
// and gets nothing new from its parent takes it for withholding.
func (n *Machine) LiveEdge(now time.Time, seq uint64) {
	if n.state == stateLeft {
		return
	}
	n.hearEdge(now, seq)
}

// hearEdge records that the broadcast has reached seq (1 + a sequence
// number), unless that cannot be true: beyond what this node holds plus
// what could have been cut since its last new chunk, plus a window.
func (n *Machine) hearEdge(now time.Time, seq uint64) {
	if seq == 0 {
		return
	}
	if n.haveAny {
		since := uint64(max(now.Sub(n.newAt), 0) / max(n.cfg.ChunkInterval, time.Millisecond))
		if limit := addSat64(addSat64(n.held(), since), uint64(n.cfg.Window)); seq > limit {
			return
		}
	}
	if seq >= n.edge || now.Sub(n.edgeAt) > 3*n.cfg.WithholdTimeout {
		n.edge, n.edgeAt = seq, now
	}
}

// edgeAhead reports whether the edge heard lately is well beyond what
// this node holds.
func (n *Machine) edgeAhead(now time.Time) bool {
	return n.edge > 0 && now.Sub(n.edgeAt) <= 3*n.cfg.WithholdTimeout && n.edge > addSat64(n.held(), withholdSlack)
}

// checkWithheld takes the parent for withholding when it has sent nothing
// new for WithholdTimeout while the broadcast went well past what this node
// holds and the parent's heartbeats say it holds more: it is banned, left
// and named to whoever is asked next. A parent whose heartbeats say it
// lacks those chunks too is starving itself, not withholding: it gets
// three times as long to recover before it is left (silently, no ban). The
// broadcaster is not judged (it is the stream), nor a parent that says it
// is out of the tree itself (loseParent's own timer covers that). It
// reports whether the parent was left.
func (n *Machine) checkWithheld(now time.Time) bool {
	if n.isRoot || n.state != stateAttached || n.parent.ID == n.cfg.Root.ID || !n.parentOutSince.IsZero() || n.prevParent.ID != "" {
		return false
	}
	p := n.parent
	if n.parentChunks == 0 && now.Sub(n.attachedAt) >= firstChunkWait*n.cfg.ChunkInterval &&
		n.parentHeld0 > 0 && n.parentHeld > addSat64(n.parentHeld0, 1) && n.parentHeld > addSat64(n.held(), 1) {
		// Not a chunk since it adopted this node, not even the init chunk
		// an honest parent backfills at once, though its heartbeats say it
		// has had new ones since and holds more than this node: withholding,
		// found within a few chunk intervals (a node displaced for a
		// withholder comes back before its player runs dry).
		return n.leaveWithholder(now)
	}
	if now.Sub(n.newAt) < n.cfg.WithholdTimeout || !n.edgeAhead(now) {
		return false
	}
	if n.parentHeld <= addSat64(n.held(), withholdSlack) {
		if now.Sub(n.newAt) < 3*n.cfg.WithholdTimeout {
			return false
		}
		n.send(p, &Message{Type: MsgLeave})
		n.loseParent(now, LossSilent, nil)
		return true
	}
	return n.leaveWithholder(now)
}

// leaveWithholder bans and leaves the parent, taken for withholding, and
// rejoins naming it.
func (n *Machine) leaveWithholder(now time.Time) bool {
	p := n.parent
	n.stats.Withheld++
	n.banFor(now, p.ID)
	n.send(p, &Message{Type: MsgLeave})
	n.lostWithheld = true
	n.loseParent(now, LossWithheld, nil)
	return true
}

// banFor stops trusting a peer for BanDuration.
func (n *Machine) banFor(now time.Time, id PeerID) {
	if m := n.learn(n.infoOf(id), noDepth, 0, false); m != nil {
		m.bannedUntil = stampOf(now.Add(n.cfg.BanDuration))
		n.banUntil = m.bannedUntil.time()
	}
}

// withholdDue returns when checkWithheld could next act (for NextTick).
func (n *Machine) withholdDue() (time.Time, bool) {
	if n.isRoot || n.state != stateAttached || n.parent.ID == n.cfg.Root.ID {
		return time.Time{}, false
	}
	if n.parentChunks == 0 && n.parentHeld > 0 {
		return n.attachedAt.Add(firstChunkWait * n.cfg.ChunkInterval), true
	}
	if n.edge == 0 {
		return time.Time{}, false
	}
	return n.newAt.Add(n.cfg.WithholdTimeout), true // early for a starving parent: NextTick errs early
}

// --- handovers: a displacement made before break ---

// handoverFailed takes back a child that was handed over and is still
// ours (it says so with an attach): its slot is its own again,
// and the children beyond the slots go (trimToSlots: the newcomer first if
// the child's attach named it as withholding).
func (n *Machine) handoverFailed(now time.Time, c *child) {
	c.handTo, c.handUntil = "", time.Time{}
	n.handing--
	n.statusDirty = true
	n.trimToSlots(now)
}

// takeHandover answers the parent's Leave that hands this node over to a
// bigger relay: it moves there, make before break (the parent feeds it
// until the relay does, checkMove). It reports whether it did; if not (the
// relay is banned or named as a withholder, a move is under way) the Leave
// is a plain one.
func (n *Machine) takeHandover(now time.Time, m *Message) bool {
	if n.moving || n.prevParent.ID != "" || len(m.Candidates) == 0 {
		return false
	}
	c := m.Candidates[0]
	if c.ID == n.cfg.Self.ID {
		return false
	}
	mb := n.learn(c.PeerInfo, c.Depth, c.Free, true)
	if mb == nil || now.Before(mb.bannedUntil.time()) || now.Before(mb.suspectUntil.time()) {
		return false
	}
	n.handedOver = true
	if i := n.childIndex(c.ID); i >= 0 {
		// A child of ours climbed into our place: it is leaving us, and
		// says so once its new parent has delivered (confirmMove); until
		// then it would refuse us as its parent. Wait for its Leave.
		n.removeChild(i)
		n.awaitFrom, n.awaitUntil = c.ID, now.Add(n.cfg.AttachTimeout+n.cfg.WithholdTimeout)
		return true
	}
	n.attach(now, mb, AttachImprove)
	return true
}

// awaited goes on with a handover that waited for the relay, once a child
// of ours, to leave us (its Leave has come), or gives up at the deadline.
func (n *Machine) awaited(now time.Time, left bool) {
	id := n.awaitFrom
	n.awaitFrom, n.awaitUntil = "", time.Time{}
	if m := n.members[id]; left && m != nil && n.state == stateAttached && !n.moving {
		n.attach(now, m, AttachImprove)
		return
	}
	if n.handedOver {
		n.handedOver = false
		n.loseParent(now, LossLeft, nil)
	}
}

// --- moves: make before break, and check ---

// confirmMove leaves the parent a move left behind, now that the new one
// has delivered (or the deadline passed with nothing to judge by).
func (n *Machine) confirmMove() {
	if n.prevParent.ID == "" {
		return
	}
	if n.prevParent.ID != n.parent.ID {
		n.send(n.prevParent, &Message{Type: MsgLeave})
	}
	n.prevParent, n.prevPath = PeerInfo{}, nil
	n.handedOver = false
}

// checkMove judges a move under way at its deadline: a new parent that sent
// no chunk while the old one went on delivering new ones is withholding:
// it is banned and left, and the node goes back under the old parent,
// which still holds its slot.
func (n *Machine) checkMove(now time.Time) {
	if n.prevParent.ID == "" || now.Before(n.movedAt.Add(n.cfg.WithholdTimeout)) {
		return
	}
	if !n.newAt.After(n.movedAt) {
		n.confirmMove() // nothing new from anyone: nothing to judge by
		return
	}
	bad := n.parent
	n.stats.Withheld++
	n.banFor(now, bad.ID)
	n.send(bad, &Message{Type: MsgLeave})
	n.event(Event{Type: EvParentLost, Peer: bad.ID, Loss: LossWithheld})
	n.parent = n.prevParent
	path := n.prevPath
	n.prevParent, n.prevPath = PeerInfo{}, nil
	n.handedOver = false
	n.parentHeard = now
	n.chunksSince = 0
	n.setPath(now, path)
	n.event(Event{Type: EvAttached, Peer: n.parent.ID, Depth: n.depth(), Moved: true})
	// Back under the old parent, which still feeds this node: an attach
	// says so and names the withholder (a parent that was handing this node
	// over takes it back and drops the newcomer).
	var seq uint64
	if n.haveAny {
		seq = n.next + 1
	}
	n.send(n.parent, &Message{Type: MsgAttach, Seq: seq, Capacity: uint32(n.cfg.Slots), Free: n.free(),
		Addrs: n.cfg.Self.Addrs, Flags: AttachWithheld, Lost: bad.ID})
	n.lastStatus = now
}

func addSat32(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}

func mulSat32(a, b uint32) uint32 {
	if v := uint64(a) * uint64(b); v <= math.MaxUint32 {
		return uint32(v)
	}
	return math.MaxUint32
}

func addSat64(a, b uint64) uint64 { return addSat(a, b) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkSlow takes the parent for too slow when the grandparent's answers to
// two receipts in a row (ReceiptInterval apart) say that it holds at least
// slowSlack chunks more than this node, and no fewer on the second: the chunks reach the parent's side
// but not this node in time, because the parent lags its own parent or its
// uplink is behind. (After a mass failure a small relay near the top that
// adopted orphans, with their backfills and strangers' pulls on its
// uplink, fed its children seconds late for as long as it stayed full, and
// a slow parent is neither silent nor withholding: its chunks keep
// coming.) The node leaves it, which also frees the parent's uplink, and
// rejoins under someone that holds more (probeRejoin). Only the
// grandparent's word counts: it is the one that sees this node's parent
// from above, and a lag that starts higher up is for the nodes there to
// fix, not for the whole subtree below it to leave. A node that holds no
// media chunk yet waits for its first keyframe, not for a faster parent.
func (n *Machine) checkSlow(now time.Time, from PeerID, seq uint64) {
	d := len(n.path)
	if !n.haveAny || n.isRoot || n.state != stateAttached || n.moving || n.prevParent.ID != "" || d < 2 || n.path[d-2].ID != from {
		return
	}
	h := n.held()
	if seq < addSat64(h, edgeSlack) {
		n.slowSince = time.Time{}
		return
	}
	lag := seq - h
	if n.slowSince.IsZero() || now.Sub(n.slowAt) > 2*n.cfg.ReceiptInterval {
		n.slowSince, n.slowLag = now, lag
	}
	n.slowAt = now
	prev := n.slowLag
	n.slowLag = lag
	if lag < slowSlack || lag < prev || now.Sub(n.slowSince) < n.cfg.ReceiptInterval/2 {
		// Not far behind, or catching up (a joiner's backfill from an old
		// keyframe under a parent that feeds it faster than the stream):
		// leaving would only cost it what is on the way.
		return
	}
	n.send(n.parent, &Message{Type: MsgLeave})
	n.loseParent(now, LossSlow, nil)
}
