package mesh

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

type state uint8

const (
	stateDetached  state = iota // not in the tree; the next Tick starts a join
	stateProbing                // pings out to candidates, waiting for pongs
	stateAttaching              // an attach is out, waiting for the answer
	stateAttached               // in the tree (the broadcaster always is)
	stateLeft                   // Leave was called: inert
)

var stateNames = [...]string{"detached", "probing", "attaching", "attached", "left"}

func (s state) String() string { return stateNames[s] }

// noDepth is the depth a member reports when it is not in the tree.
const noDepth = 1 << 16

// Limits on what a node remembers.
const (
	maxMembers       = 128 // known peers
	maxRoom          = 4   // candidates with room a status carries
	maxRedirect      = 6   // candidates a redirect carries
	maxRejoinProbes  = 8   // members a rejoin pings at once
	maxPull          = 64  // chunks one pull asks for
	rootMaxBackfill  = 4   // chunks the broadcaster backfills an attach with at most: its upload is for its children's live chunks
	maxRootRedirects = 200 // redirects the broadcaster sends a second
	assumedRTT       = 150 * time.Millisecond
	// cutOffWindow, in ParentTimeouts since this node's newest chunk, is
	// how long a member holding nothing newer may be cut off by the same
	// failure without knowing it yet (cutOffLikely).
	cutOffWindow = 3
	// backfillSpan is how much of the newest stream a parent backfills
	// an attach with at most. It was 32 chunks (6.4 s): after a mass
	// failure a relay that adopted a few orphans spent seconds of its
	// upload on chunks they could no longer play in time, their live
	// ones queued behind; 5 (a second) cut the 2,000-viewer kill's
	// longest stalls (p99, mean over 8 seeds) from 1.35 s to 0.75 s.
	backfillSpan  = time.Second
	improveMinGap = 20 * time.Millisecond
	climbDepth    = 5 // a node this deep looks for a shallower place
	// defaultEarlyMoveSlots: Config.EarlyMoveSlots when zero.
	defaultEarlyMoveSlots = 4
	climbGain             = 2 // levels a climb must gain, so nodes never trade places back and forth
)

// member is a peer this node has heard of.
type member struct {
	info        PeerInfo
	rtt         time.Duration // 0: not measured; measured here, from pingAt
	depth       uint32        // noDepth: unknown or not in the tree
	free        uint32
	held        uint64 // what its last pong said it holds (1 + seq)
	heldAt      stamp  // when that pong came
	pingSentAt  stamp  // zero: no ping outstanding (waited for)
	pingAt      stamp  // the last ping sent, matched by its pong's echo; zero: answered
	coolUntil   stamp  // do not ask it to adopt us before this
	bannedUntil stamp
	// suspectUntil: someone named it as a parent that withheld the stream;
	// until then nobody is redirected to it or pulls from it.
	suspectUntil stamp
}

// stamp is a time in a member, in nanoseconds after stampBase (0: the
// zero time), 8 bytes where a time.Time takes 24: a node remembers up to
// maxMembers members, whose six times made a member 208 bytes (112 now),
// the largest part of a simulation's heap. Taken from a time with a
// monotonic reading (a real node's clock) it keeps it: the difference to
// stampBase is monotonic, and so is the time it gives back, so a ban or a
// cool-down does not move when the wall clock is set. A time without one
// (the simulator's virtual clock) comes back exactly as it was.
type stamp int64

// stampBase is what stamps count from.
var stampBase = time.Now()

func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	if d := t.Sub(stampBase); d != 0 {
		return stamp(d) // before stampBase (the simulator's epoch): negative
	}
	return 1 // stampBase itself, 1 ns off: not the zero stamp
}

// time returns the stamp as a time.Time; the zero stamp as the zero time.
func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return stampBase.Add(time.Duration(s))
}

func (s stamp) IsZero() bool { return s == 0 }

// child is a peer this node forwards chunks to.
type child struct {
	info     PeerInfo
	capacity uint32   // child slots it claims in all
	free     uint32   // free slots it claims
	subtree  uint32   // its subtree, as bounded here (boundSubtree)
	claimed  uint32   // its subtree as it claims it
	gauges   []uint64 // per Config.Counters: a gauge's sum over the child's subtree, as last reported
	room     []Candidate
	heardAt  time.Time
	sentAt   time.Time
	addedAt  time.Time

	// handTo: displaced by this peer, which it is moving under; until it
	// has left (or handUntil) it is still fed here but holds no slot.
	handTo    PeerID
	handUntil time.Time
	// welcomeEnd: a newcomer adopted beyond the slots for a moment
	// (welcome.go), fed until it has moved to room below, and never
	// after this; zero for a child in a slot.
	welcomeEnd time.Time

	// What its children's receipts say (trust.go).
	proven    uint32    // the most of its children seen fed at once
	reporters []receipt // the latest receipt of each of its children
	caughtAt  time.Time // named as withholding by one of them; zero: not
	accuser   PeerID
	vouches   []vouch // its children it says proved capacity (its status)

	// orphan: an attach that named this child as the parent its sender
	// lost while the child was still heard from, held for the child's
	// goodbye or silence (holdOrphan).
	orphan *heldAttach
}

// heldAttach is an orphan's attach kept unanswered for a moment.
type heldAttach struct {
	from  PeerID
	msg   Message
	ping  int64     // the time sent in the ping to the child it names
	until time.Time // then answered whatever the child has said
}

// vouch is a child's word for one of its own children's proven capacity.
type vouch struct {
	id     PeerID
	proven uint32
}

// Stats are a node's counters, for metrics and benchmarks.
type Stats struct {
	ChunksIn   uint64 // new chunks accepted (each sequence number once)
	Duplicates uint64 // chunks received again
	TooOld     uint64 // chunks older than the window
	Forged     uint64 // chunks that failed verification
	Pulls      uint64 // pull requests sent
	Moves      uint64 // improvement moves made
	Rejoins    uint64 // re-attachments after a parent was lost
	Withheld   uint64 // parents (or move targets) taken for withholding the stream
	Padded     uint64 // chunks that came padded beyond their canonical encoding
}

// Status is a snapshot of a node's place in the tree.
type Status struct {
	State    string
	Parent   PeerID
	Depth    int      // -1 when not in the tree
	Path     []PeerID // root..parent
	Children []PeerID // every child fed, Handing included
	Handing  []PeerID // children being handed over to a bigger relay: fed, outside the slots
	Subtree  uint32   // this node and all below it, as last reported
	Highest  uint64   // highest sequence number held
	HaveAny  bool
	// Counters are the totals of Config.Counters here: for events,
	// everything counted at this node and reported by its children since
	// New (on the broadcaster, the broadcast's total); for a gauge, the sum
	// over this node and all below it, as last reported. Nil without
	// counters.
	Counters map[string]uint64
	// Room is where this node would send a joiner now: members of its
	// subtree that reported free slots (itself included), shallowest
	// first, as a redirect names them (at most maxRedirect). A broadcaster
	// lists them in the directory, so a browser can enter the tree there
	// rather than at the broadcaster.
	Room []PeerInfo
}

// Machine is one peer's state machine for one broadcast's tree. It is not safe
// for concurrent use: one goroutine (the shell's) owns it.
type Machine struct {
	cfg    Config
	isRoot bool
	state  state

	parent      PeerInfo
	path        []PeerInfo // root..parent; empty for the broadcaster
	parentHeard time.Time
	// parentOutSince is when the parent's heartbeats started saying that it
	// is out of the tree itself (zero while it is in).
	parentOutSince time.Time
	children       []*child
	handing        int // children being handed over (child.handTo set), welcomed ones aside
	welcoming      int // children welcomed beyond the slots (child.welcomeEnd set)
	// released: held orphans whose lost parent has been removed, to be
	// answered at the end of the input (answerReleased).
	released []*heldAttach
	// On the broadcaster: the vouches of the last child that went, until
	// its orphans have asked (trust.go, vouched).
	pastVouches      []vouch
	pastVouchesUntil time.Time
	lastTick         time.Time

	members     map[PeerID]*member
	memberOrder []PeerID

	// The chunk window: ring[seq%Window] holds seq when present.
	ring      []*chunk.Chunk
	haveAny   bool
	highest   uint64
	next      uint64 // lowest sequence number not yet held, at or after the start
	lastInit  *chunk.Chunk
	gapSince  time.Time
	pulledAt  time.Time
	pullFails int

	// Joining and moving.
	probeDeadline  time.Time
	probeStart     time.Time // when the probe under way began
	rejoinProbe    bool      // the probe under way is a rejoin's (probeRejoin)
	leftHint       bool      // the parent left naming where to go: ask its first hint at once
	probeOrder     []PeerID  // a rejoin's probe: whom it pinged, in order…
	probeHints     int       // …of which the first probeHints were hints
	attachTo       PeerID
	attachDeadline time.Time
	welcomed       bool // the parent adopted this node beyond its slots (AcceptWelcome)
	moving         bool // the attach out is an improvement move while attached
	hints          []PeerID
	lostAt         time.Time // when the parent was lost; zero when not rejoining
	lostParent     PeerID    // the parent lost, told to whoever we ask next
	everAttached   bool
	rootTriedAt    time.Time
	nextImprove    time.Time
	lastStatus     time.Time
	sentStatus     Message    // the last status sent, to tell a change from a repeat
	statusDirty    bool       // something a status reports may have changed since sentStatus
	banUntil       time.Time  // the latest ban's end: before it, banned() must look
	suspectEnd     time.Time  // the latest suspicion's end: before it, suspect() must look
	redirectReset  time.Time  // start of the second redirects counts in
	redirects      int        // redirects the broadcaster sent this second
	strangerReset  time.Time  // start of the second strangerServed counts in
	strangerServed uint64     // chunks served this second to pulls from non-children
	spareReset     time.Time  // start of the second spareUsed counts in
	spareUsed      uint64     // chunks sent this second beyond the live ones: the broadcaster's backfills and pulls, a relay's newcomers' backfills
	edgeReset      time.Time  // start of the second edgesSent counts in
	edgesSent      int        // edges sent this second to peers that are not grandchildren
	kept           []keptSlot // slots kept for the heirs of children lost (rejoin.go)
	started        bool

	// Receipts, the live edge and withholding (trust.go).
	newAt        time.Time // the highest sequence number last went up, or the node attached
	chunksSince  uint32    // new chunks since the last receipt
	receiptAt    time.Time
	receiptTo    PeerID // the grandparent the last receipt went to
	edge         uint64 // 1 + the highest sequence number heard to exist; 0: none
	edgeAt       time.Time
	lostWithheld bool       // the parent being replaced withheld the stream, or forged or padded a chunk
	slowSince    time.Time  // the grandparent's edges have said since then that this node lags it; zero: not
	slowAt       time.Time  // the latest such edge
	slowLag      uint64     // how far behind it said this node was
	handedOver   bool       // the move under way was asked by the parent (a displacement)
	awaitFrom    PeerID     // a handover waits for this former child to leave us…
	awaitUntil   time.Time  // …until then
	prevParent   PeerInfo   // a move under way: the parent kept until the new one delivers
	prevPath     []PeerInfo // and the path under it
	movedAt      time.Time
	parentHeld   uint64    // what the parent's last heartbeat said it holds (1 + seq)
	parentHeld0  uint64    // what its first heartbeat since it adopted this node said
	parentChunks uint64    // chunk messages from the parent since attaching to it
	attachedAt   time.Time // when the parent accepted this node

	// Per Config.Counters: for events, what was counted here and below and
	// not yet reported to a parent, and (totals) everything counted here and
	// below; for a gauge, this node's own level (counts).
	counts  []uint64
	totals  []uint64
	scratch []uint64 // for takeCounters

	stats Stats
	ready Ready
}

// New returns a machine for cfg. The broadcaster's (Self.ID == Root.ID)
// starts attached at depth 0; any other node joins on its first Tick.
func New(cfg Config) (*Machine, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Machine{
		cfg:     cfg,
		isRoot:  cfg.Self.ID == cfg.Root.ID,
		members: make(map[PeerID]*member),
		ring:    make([]*chunk.Chunk, cfg.Window),
	}
	if k := len(cfg.Counters); k > 0 {
		n.cfg.Counters = slices.Clone(cfg.Counters)
		n.counts, n.totals, n.scratch = make([]uint64, k), make([]uint64, k), make([]uint64, k)
	}
	if n.isRoot {
		n.state = stateAttached
		n.everAttached = true
	} else {
		n.learn(cfg.Root, 0, 0, false)
	}
	return n, nil
}

// ID returns the node's peer ID.
func (n *Machine) ID() PeerID { return n.cfg.Self.ID }

// Ready returns what the node wants done and forgets it. The slices are
// reused by the next call into the node.
func (n *Machine) Ready() Ready {
	rd := n.ready
	n.ready.Messages = n.ready.Messages[:0]
	n.ready.Deliver = n.ready.Deliver[:0]
	n.ready.Events = n.ready.Events[:0]
	return rd
}

// HasReady reports whether Ready has anything.
func (n *Machine) HasReady() bool { return !n.ready.Empty() }

// Stats returns the node's counters.
func (n *Machine) Stats() Stats { return n.stats }

// Status returns a snapshot of the node's place in the tree.
func (n *Machine) Status() Status {
	s := Status{State: n.state.String(), Depth: n.depth(), Highest: n.highest, HaveAny: n.haveAny, Subtree: n.subtree(), Counters: n.counterTotals()}
	if n.state == stateAttached && !n.isRoot {
		s.Parent = n.parent.ID
	} else if n.state != stateAttached {
		s.Depth = -1
	}
	for _, p := range n.path {
		s.Path = append(s.Path, p.ID)
	}
	for _, c := range n.children {
		s.Children = append(s.Children, c.info.ID)
		if c.handTo != "" {
			s.Handing = append(s.Handing, c.info.ID)
		}
	}
	for i, c := range n.roomBelow(n.lastTick, "") {
		if i == maxRedirect {
			break
		}
		s.Room = append(s.Room, PeerInfo{ID: c.ID, Addrs: slices.Clone(c.Addrs)})
	}
	return s
}

func (n *Machine) depth() int { return len(n.path) }

func (n *Machine) send(to PeerInfo, m *Message) {
	n.ready.Messages = append(n.ready.Messages, Envelope{To: to, Msg: m})
}

func (n *Machine) event(e Event) { n.ready.Events = append(n.ready.Events, e) }

// AddCandidates tells the node of tree members it may join (from a
// directory, the DHT or a link).
func (n *Machine) AddCandidates(now time.Time, peers ...PeerInfo) {
	for _, p := range peers {
		n.learn(p, noDepth, 0, false)
	}
}

// learn records a peer; depth and free are recorded when known is true.
func (n *Machine) learn(p PeerInfo, depth, free uint32, known bool) *member {
	if p.ID == "" || p.ID == n.cfg.Self.ID {
		return nil
	}
	m := n.members[p.ID]
	if m == nil {
		if len(n.members) >= maxMembers {
			n.forgetOne()
		}
		m = &member{info: p, depth: noDepth}
		n.members[p.ID] = m
		n.memberOrder = append(n.memberOrder, p.ID)
	} else if len(p.Addrs) > 0 {
		m.info.Addrs = p.Addrs
	}
	if known {
		m.depth, m.free = depth, free
	}
	return m
}

// forgetOne drops the oldest member that is not the root, the parent or an
// ancestor.
func (n *Machine) forgetOne() {
	for i, id := range n.memberOrder {
		if id == n.cfg.Root.ID || id == n.parent.ID || n.inPath(id) || id == n.attachTo {
			continue
		}
		delete(n.members, id)
		n.memberOrder = slices.Delete(n.memberOrder, i, i+1)
		return
	}
}

func (n *Machine) inPath(id PeerID) bool {
	for _, p := range n.path {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (n *Machine) childIndex(id PeerID) int {
	for i, c := range n.children {
		if c.info.ID == id {
			return i
		}
	}
	return -1
}

func (n *Machine) banned(id PeerID, now time.Time) bool {
	if now.After(n.banUntil) {
		return false // nobody is banned: skip the lookup on the hot path
	}
	m := n.members[id]
	return m != nil && now.Before(m.bannedUntil.time())
}

func (n *Machine) infoOf(id PeerID) PeerInfo {
	if m := n.members[id]; m != nil {
		return m.info
	}
	if i := n.childIndex(id); i >= 0 {
		return n.children[i].info
	}
	return PeerInfo{ID: id}
}

// Publish hands the broadcaster's node one of its own chunks, signed.
func (n *Machine) Publish(now time.Time, c *chunk.Chunk) error {
	if !n.isRoot {
		return ErrNotBroadcaster
	}
	n.accept(now, "", c)
	return nil
}

// PeerDown tells the node that the connection to a peer went away.
func (n *Machine) PeerDown(now time.Time, id PeerID) {
	if n.state == stateLeft {
		return
	}
	if m := n.members[id]; m != nil {
		m.coolUntil = stampOf(now.Add(2 * n.cfg.AttachTimeout))
		m.pingSentAt, m.pingAt = 0, 0
		m.rtt = 0
		m.depth = noDepth // gone: no longer a place in the tree to join or pull from
	}
	if i := n.childIndex(id); i >= 0 {
		if !n.children[i].away() {
			n.keepSlotFor(now, n.children[i])
		}
		n.removeChild(i)
	}
	if n.prevParent.ID == id {
		n.prevParent, n.prevPath = PeerInfo{}, nil // nothing to go back to
	}
	switch {
	case n.state == stateAttached && !n.isRoot && n.parent.ID == id:
		n.loseParent(now, LossDown, nil)
	case n.attachTo == id:
		n.attachFailed(now)
	}
	n.answerReleased(now)
}

// Leave takes the node out of the tree gracefully: the parent is told, and
// the children are sent to the parent (which has just got a free slot).
func (n *Machine) Leave(now time.Time) {
	if n.state == stateLeft {
		return
	}
	var where []Candidate
	if n.state == stateAttached && !n.isRoot {
		where = append(where, Candidate{PeerInfo: n.parent, Depth: uint32(n.depth() - 1), Free: 1})
		n.send(n.parent, &Message{Type: MsgLeave})
	}
	if n.prevParent.ID != "" {
		n.send(n.prevParent, &Message{Type: MsgLeave})
	}
	where = append(where, n.roomBelow(now, PeerID(""))...)
	for _, c := range n.children {
		cands := slices.DeleteFunc(slices.Clone(where), func(x Candidate) bool { return x.ID == c.info.ID })
		n.send(c.info, &Message{Type: MsgLeave, Candidates: cands})
	}
	n.children = nil
	n.state = stateLeft
	n.event(Event{Type: EvDetached})
}

// Tick tells the node that time has passed. Call it often: every
// HeartbeatInterval/2 or more often.
func (n *Machine) Tick(now time.Time) {
	if n.state == stateLeft {
		return
	}
	n.lastTick = now
	if !n.started {
		n.started = true
		n.nextImprove = now.Add(n.jitter(n.cfg.ImproveInterval))
	}
	switch n.state {
	case stateDetached:
		n.join(now)
	case stateProbing:
		if !now.Before(n.probeDeadline) {
			n.choose(now)
		}
	case stateAttaching:
		if !now.Before(n.attachDeadline) {
			n.attachFailed(now)
		}
	case stateAttached:
		if !n.isRoot && now.Sub(n.parentHeard) > n.cfg.ParentTimeout {
			n.loseParent(now, LossSilent, nil)
			break
		}
		n.checkMove(now)
		if n.awaitFrom != "" && !now.Before(n.awaitUntil) {
			n.awaited(now, false)
		}
		if n.checkWithheld(now) {
			break
		}
		if n.moving && !now.Before(n.attachDeadline) {
			n.cancelMove(now)
		}
		if !n.isRoot && now.Sub(n.lastStatus) >= n.cfg.StatusInterval {
			n.maybeSendStatus(now)
		}
		n.maybeSendReceipt(now)
		n.repairGaps(now)
		if !n.isRoot && n.cfg.ImproveInterval > 0 && !now.Before(n.nextImprove) {
			next := n.cfg.ImproveInterval
			if n.depth() >= climbDepth {
				next /= 4 // deep nodes keep climbing until they are not
			}
			n.nextImprove = now.Add(n.jitter(next))
			n.improve(now)
		}
	}
	if n.welcoming > 0 {
		n.tickWelcome(now)
	}
	// Children: heartbeats, and dropping the silent ones.
	for i := 0; i < len(n.children); i++ {
		c := n.children[i]
		if now.Sub(c.heardAt) > n.cfg.ChildTimeout || c.handTo != "" && !now.Before(c.handUntil) {
			n.removeChild(i)
			i--
			continue
		}
		if now.Sub(c.sentAt) >= n.cfg.HeartbeatInterval {
			c.sentAt = now
			d := uint32(noDepth) // we are rejoining ourselves
			if n.state == stateAttached {
				d = uint32(n.depth())
			}
			n.send(c.info, &Message{Type: MsgPath, Depth: d, Seq: n.held()})
		}
	}
	n.heldDue(now)
	n.answerReleased(now)
}

// NextTick returns the earliest time at which Tick would do anything, as
// the node stands: until then Tick has no effect. A driver that runs many
// nodes (the simulator) may skip their Ticks until then, provided it asks
// again after every other input (Step, Publish, AddCandidates, PeerDown,
// Leave). It errs early, never late; the zero time means now.
func (n *Machine) NextTick() time.Time {
	if n.state == stateLeft {
		return farFuture
	}
	if !n.started || n.state == stateDetached {
		return time.Time{}
	}
	// In Unix nanoseconds: the simulator calls this after every message.
	w := int64(math.MaxInt64)
	at := func(t time.Time, d time.Duration) {
		if t.IsZero() {
			w = math.MinInt64 // never set: due now
		} else if v := t.UnixNano() + int64(d); v < w {
			w = v
		}
	}
	cfg := &n.cfg
	switch n.state {
	case stateProbing:
		at(n.probeDeadline, 0)
	case stateAttaching:
		at(n.attachDeadline, 0)
	case stateAttached:
		if n.moving {
			at(n.attachDeadline, 0)
		}
		if !n.isRoot {
			at(n.parentHeard, cfg.ParentTimeout+1)
			if n.statusDirty {
				at(n.lastStatus, cfg.StatusInterval)
			} else {
				at(n.lastStatus, max(cfg.StatusInterval, cfg.StatusKeepalive))
			}
			if !n.gapSince.IsZero() && n.next <= n.highest {
				last := n.gapSince
				if n.pulledAt.After(last) {
					last = n.pulledAt
				}
				at(last, cfg.GapTimeout)
			}
			if cfg.ImproveInterval > 0 {
				at(n.nextImprove, 0)
			}
			if n.prevParent.ID != "" {
				at(n.movedAt, cfg.WithholdTimeout)
			}
			if n.awaitFrom != "" {
				at(n.awaitUntil, 0)
			}
			if t, ok := n.receiptDue(); ok {
				w = min(w, t)
			}
			if t, ok := n.withholdDue(); ok {
				at(t, 0)
			}
		}
	}
	for _, c := range n.children {
		at(c.heardAt, cfg.ChildTimeout+1)
		at(c.sentAt, cfg.HeartbeatInterval)
		if c.handTo != "" {
			at(c.handUntil, 0)
		}
		if !c.welcomeEnd.IsZero() {
			at(c.welcomeEnd, 0)
			if c.handTo == "" {
				at(c.addedAt, cfg.WelcomeFor)
				if !c.handUntil.IsZero() {
					at(c.handUntil, 0)
				}
			}
		}
		if c.orphan != nil {
			at(c.orphan.until, 0)
		}
	}
	switch w {
	case math.MaxInt64:
		return farFuture
	case math.MinInt64:
		return time.Time{}
	}
	return time.Unix(0, w)
}

// farFuture stands for "never" in NextTick.
var farFuture = time.Unix(1<<62, 0)

// jitter returns d scaled by a random factor in [0.5, 1.5).
func (n *Machine) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d/2 + time.Duration(n.cfg.Rand.Int64N(int64(d)+1))
}

// Step hands the node a message from a peer.
func (n *Machine) Step(now time.Time, from PeerID, m *Message) error {
	err := n.step(now, from, m)
	if len(n.released) > 0 { // (rare: not on a chunk's way)
		n.answerReleased(now)
	}
	return err
}

func (n *Machine) step(now time.Time, from PeerID, m *Message) error {
	if n.state == stateLeft {
		return nil
	}
	if n.banned(from, now) {
		return fmt.Errorf("%w: %s", ErrBanned, from)
	}
	switch m.Type {
	case MsgChunk:
		return n.stepChunk(now, from, m)
	case MsgPing:
		n.stepPing(now, from, m)
	case MsgPong:
		n.stepPong(now, from, m)
	case MsgAttach:
		n.stepAttach(now, from, m, true)
	case MsgAccept:
		n.stepAccept(now, from, m)
	case MsgRedirect:
		n.stepRedirect(now, from, m)
	case MsgReject:
		if from == n.attachTo {
			if mb := n.members[from]; mb != nil && m.Reason == ReasonDetached {
				mb.depth = noDepth
			}
			if n.moving {
				n.cancelMove(now)
			} else {
				n.attachFailed(now)
			}
		}
	case MsgLeave:
		if i := n.childIndex(from); i >= 0 {
			n.removeChild(i)
		}
		if from == n.prevParent.ID {
			n.prevParent, n.prevPath = PeerInfo{}, nil
		}
		if from == n.awaitFrom && from != "" {
			n.awaited(now, true)
			break
		}
		if n.state == stateAttached && !n.isRoot && from == n.parent.ID {
			if m.Flags&LeaveHandover != 0 && n.takeHandover(now, m) {
				break
			}
			var hints []PeerID
			for _, c := range m.Candidates {
				n.learn(c.PeerInfo, c.Depth, c.Free, true)
				hints = append(hints, c.ID)
			}
			n.loseParent(now, LossLeft, hints)
		}
	case MsgStatus:
		n.stepStatus(now, from, m)
	case MsgPath:
		n.stepPath(now, from, m)
	case MsgPull:
		n.stepPull(now, from, m)
	case MsgReceipt:
		n.stepReceipt(now, from, m)
	case MsgEdge:
		if n.inPath(from) {
			n.hearEdge(now, m.Seq)
			n.checkSlow(now, from, m.Seq)
		}
	default:
		return fmt.Errorf("%w: message type %d", ErrMalformed, m.Type)
	}
	return nil
}
