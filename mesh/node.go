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
	maxPull          = 64  // chunks one pull asks for
	maxBackfill      = 32  // chunks an attach is backfilled with at most
	rootMaxBackfill  = 4   // the same at the broadcaster, whose upload is for its children's live chunks
	maxRootRedirects = 200 // redirects the broadcaster sends a second
	assumedRTT       = 150 * time.Millisecond
	improveMinGap    = 20 * time.Millisecond
	climbDepth       = 5 // a node this deep looks for a shallower place
	climbGain        = 2 // levels a climb must gain, so nodes never trade places back and forth
)

// member is a peer this node has heard of.
type member struct {
	info        PeerInfo
	rtt         time.Duration // 0: not measured
	depth       uint32        // noDepth: unknown or not in the tree
	free        uint32
	pingSentAt  time.Time // zero: no ping outstanding
	coolUntil   time.Time // do not ask it to adopt us before this
	bannedUntil time.Time
}

// child is a peer this node forwards chunks to.
type child struct {
	info     PeerInfo
	capacity uint32
	free     uint32
	subtree  uint32
	web      uint32
	room     []Candidate
	heardAt  time.Time
	sentAt   time.Time
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
	// Hearts counts the hearts this node added (AddHearts) and its
	// children reported: on the broadcaster, the broadcast's total.
	Hearts uint64
}

// Status is a snapshot of a node's place in the tree.
type Status struct {
	State    string
	Parent   PeerID
	Depth    int      // -1 when not in the tree
	Path     []PeerID // root..parent
	Children []PeerID
	Subtree  uint32 // this node and all below it, as last reported
	Web      uint32 // viewers served outside the tree (SetWeb) here and below, as last reported
	Highest  uint64 // highest sequence number held
	HaveAny  bool
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
	attachTo       PeerID
	attachDeadline time.Time
	moving         bool // the attach out is an improvement move while attached
	hints          []PeerID
	lostAt         time.Time // when the parent was lost; zero when not rejoining
	lostParent     PeerID    // the parent lost, told to whoever we ask next
	everAttached   bool
	rootTriedAt    time.Time
	nextImprove    time.Time
	lastStatus     time.Time
	sentStatus     Message   // the last status sent, to tell a change from a repeat
	statusDirty    bool      // something a status reports may have changed since sentStatus
	banUntil       time.Time // the latest ban's end: before it, banned() must look
	redirectReset  time.Time // start of the second redirects counts in
	redirects      int       // redirects the broadcaster sent this second
	strangerReset  time.Time // start of the second strangerServed counts in
	strangerServed uint64    // chunks served this second to pulls from non-children
	started        bool

	// Aggregated up the tree with each status: hearts not yet reported to
	// a parent, and the viewers this node serves outside the tree.
	heartsUp uint64
	web      uint32

	stats Stats
	ready Ready
}

// New returns a node for cfg. The broadcaster's node (Self.ID == Root.ID)
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
	s := Status{State: n.state.String(), Depth: n.depth(), Highest: n.highest, HaveAny: n.haveAny, Subtree: n.subtree(), Web: n.webBelow()}
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
	return m != nil && now.Before(m.bannedUntil)
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
		m.coolUntil = now.Add(2 * n.cfg.AttachTimeout)
		m.pingSentAt = time.Time{}
		m.rtt = 0
		m.depth = noDepth // gone: no longer a place in the tree to join or pull from
	}
	if i := n.childIndex(id); i >= 0 {
		n.removeChild(i)
	}
	switch {
	case n.state == stateAttached && !n.isRoot && n.parent.ID == id:
		n.loseParent(now, LossDown, nil)
	case n.attachTo == id:
		n.attachFailed(now)
	}
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
	where = append(where, n.roomBelow(PeerID(""))...)
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
		if n.moving && !now.Before(n.attachDeadline) {
			n.cancelMove(now)
		}
		if !n.isRoot && now.Sub(n.lastStatus) >= n.cfg.StatusInterval {
			n.maybeSendStatus(now)
		}
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
	// Children: heartbeats, and dropping the silent ones.
	for i := 0; i < len(n.children); i++ {
		c := n.children[i]
		if now.Sub(c.heardAt) > n.cfg.ChildTimeout {
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
			n.send(c.info, &Message{Type: MsgPath, Depth: d})
		}
	}
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
		}
	}
	for _, c := range n.children {
		at(c.heardAt, cfg.ChildTimeout+1)
		at(c.sentAt, cfg.HeartbeatInterval)
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
	if n.state == stateLeft {
		return nil
	}
	if n.banned(from, now) {
		return fmt.Errorf("%w: %s", ErrBanned, from)
	}
	switch m.Type {
	case MsgChunk:
		return n.stepChunk(now, from, m.Chunk)
	case MsgPing:
		d, free := uint32(noDepth), uint32(0)
		if n.state == stateAttached {
			d, free = uint32(n.depth()), n.free()
		}
		n.send(n.infoOf(from), &Message{Type: MsgPong, Time: m.Time, Depth: d, Free: free})
	case MsgPong:
		n.stepPong(now, from, m)
	case MsgAttach:
		n.stepAttach(now, from, m)
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
		if n.state == stateAttached && !n.isRoot && from == n.parent.ID {
			var hints []PeerID
			for _, c := range m.Candidates {
				n.learn(c.PeerInfo, c.Depth, c.Free, true)
				hints = append(hints, c.ID)
			}
			n.loseParent(now, LossLeft, hints)
		}
	case MsgStatus:
		if i := n.childIndex(from); i >= 0 {
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
		} else {
			// A child we dropped (or never had) still thinks we are its
			// parent: tell it, so it rejoins instead of waiting for silence.
			n.send(n.infoOf(from), &Message{Type: MsgLeave})
		}
	case MsgPath:
		if n.state == stateAttached && !n.isRoot && from == n.parent.ID {
			n.parentHeard = now
			// A parent that is itself out of the tree for long cannot feed
			// us: after 2×ParentTimeout we rejoin on our own rather than
			// starve with the whole subtree.
			switch {
			case m.Depth != noDepth:
				n.parentOutSince = time.Time{}
			case n.parentOutSince.IsZero():
				n.parentOutSince = now
			case now.Sub(n.parentOutSince) > 2*n.cfg.ParentTimeout:
				n.send(n.parent, &Message{Type: MsgLeave})
				n.loseParent(now, LossSilent, nil)
				return nil
			}
			if len(m.Path) > 0 {
				n.setPath(now, m.Path)
			}
		}
	case MsgPull:
		n.stepPull(now, from, m)
	default:
		return fmt.Errorf("%w: message type %d", ErrMalformed, m.Type)
	}
	return nil
}

// --- chunks ---

func (n *Machine) stepChunk(now time.Time, from PeerID, c *chunk.Chunk) error {
	var err error
	if n.cfg.Verify != nil {
		err = n.cfg.Verify(c)
	} else {
		err = c.Verify(n.cfg.Broadcast, n.cfg.Key)
	}
	if err != nil {
		n.stats.Forged++
		n.event(Event{Type: EvForged, Peer: from})
		n.ban(now, from)
		return err
	}
	if n.state == stateAttached && from == n.parent.ID {
		n.parentHeard = now
	}
	n.accept(now, from, c)
	return nil
}

// ban stops trusting a peer that sent a forged chunk: as a parent it is
// left, as a child it is dropped, and it may not attach for BanDuration.
func (n *Machine) ban(now time.Time, id PeerID) {
	m := n.learn(n.infoOf(id), noDepth, 0, false)
	if m != nil {
		m.bannedUntil = now.Add(n.cfg.BanDuration)
		n.banUntil = m.bannedUntil
	}
	if i := n.childIndex(id); i >= 0 {
		n.send(n.children[i].info, &Message{Type: MsgLeave})
		n.removeChild(i)
	}
	if n.state == stateAttached && !n.isRoot && n.parent.ID == id {
		n.send(n.parent, &Message{Type: MsgLeave})
		n.loseParent(now, LossForged, nil)
	} else if n.attachTo == id {
		n.attachFailed(now)
	}
}

// accept stores a verified chunk, delivers it and forwards it to the
// children, unless it is a duplicate or too old.
func (n *Machine) accept(now time.Time, from PeerID, c *chunk.Chunk) {
	if c.IsInit() {
		if n.lastInit != nil && c.Seq <= n.lastInit.Seq {
			n.stats.Duplicates++
			return
		}
		n.lastInit = c
		n.stats.ChunksIn++
		n.ready.Deliver = append(n.ready.Deliver, c)
		n.forward(now, from, c)
		return
	}
	w := uint64(len(n.ring))
	switch {
	case !n.haveAny:
		n.haveAny = true
		n.highest, n.next = c.Seq, c.Seq
	case c.Seq+w <= n.highest || c.Seq < n.next && n.ring[c.Seq%w] == nil:
		// Older than the window, or older than where this node started.
		n.stats.TooOld++
		return
	case n.has(c.Seq):
		n.stats.Duplicates++
		return
	}
	n.ring[c.Seq%w] = c
	n.stats.ChunksIn++
	if c.Seq > n.highest {
		n.highest = c.Seq
	}
	if n.highest >= w && n.next < n.highest-w+1 {
		n.next = n.highest - w + 1 // holes that fell out of the window are given up
	}
	for n.next <= n.highest && n.has(n.next) {
		n.next++
	}
	if n.next > n.highest {
		n.gapSince = time.Time{}
		n.pullFails = 0
	} else if n.gapSince.IsZero() {
		n.gapSince = now
	}
	n.ready.Deliver = append(n.ready.Deliver, c)
	n.forward(now, from, c)
}

func (n *Machine) has(seq uint64) bool {
	c := n.ring[seq%uint64(len(n.ring))]
	return c != nil && c.Seq == seq
}

func (n *Machine) forward(now time.Time, from PeerID, c *chunk.Chunk) {
	if len(n.children) == 0 {
		return
	}
	m := &Message{Type: MsgChunk, Chunk: c}
	for _, ch := range n.children {
		if ch.info.ID == from {
			continue
		}
		ch.sentAt = now
		n.send(ch.info, m)
	}
}

// backfill sends a new (or returning) child what it lacks: the latest init
// chunk, then chunks from seq on, or from the latest keyframe when it asks
// for the live edge (seq 0).
func (n *Machine) backfill(now time.Time, c *child, want uint64) {
	if n.lastInit != nil {
		n.send(c.info, &Message{Type: MsgChunk, Chunk: n.lastInit})
	}
	if !n.haveAny {
		return
	}
	w := uint64(len(n.ring))
	lo := uint64(0)
	if n.highest >= w {
		lo = n.highest - w + 1
	}
	from := n.highest + 1
	if want > 0 {
		// At most maxBackfill chunks: an attach must not cost the parent
		// seconds of upload; anything older is pulled from elsewhere.
		from = max(want-1, lo)
		limit := uint64(maxBackfill)
		if n.isRoot {
			limit = rootMaxBackfill
		}
		if n.highest+1 > limit {
			from = max(from, n.highest+1-limit)
		}
	} else {
		for s := n.highest; s >= lo && s+1 > 0; s-- {
			if x := n.ring[s%w]; x != nil && x.Seq == s && x.IsKeyframe() {
				from = s
				break
			}
			if s == 0 {
				break
			}
		}
	}
	for s := from; s <= n.highest; s++ {
		if x := n.ring[s%w]; x != nil && x.Seq == s {
			c.sentAt = now
			n.send(c.info, &Message{Type: MsgChunk, Chunk: x})
		}
	}
}

func (n *Machine) stepPull(now time.Time, from PeerID, m *Message) {
	if !n.haveAny || m.Count == 0 {
		return
	}
	w := uint64(len(n.ring))
	count := min(uint64(m.Count), maxPull)
	if n.childIndex(from) < 0 {
		// A stranger's pull spends upload meant for our children. The
		// broadcaster serves none (its upload is the scarcest there is);
		// others serve strangers up to maxPull chunks a second.
		if n.isRoot {
			return
		}
		if now.Sub(n.strangerReset) >= time.Second {
			n.strangerReset, n.strangerServed = now, 0
		}
		count = min(count, maxPull-n.strangerServed)
		n.strangerServed += count
	}
	to := n.infoOf(from)
	for s := m.Seq; s < m.Seq+count && s <= n.highest; s++ {
		if x := n.ring[s%w]; x != nil && x.Seq == s {
			n.send(to, &Message{Type: MsgChunk, Chunk: x})
		}
	}
}

// repairGaps pulls holes in the sequence that stayed open for GapTimeout:
// from the parent first, then from other members in the tree.
func (n *Machine) repairGaps(now time.Time) {
	if n.isRoot || n.gapSince.IsZero() || n.next > n.highest {
		return
	}
	if now.Sub(n.gapSince) < n.cfg.GapTimeout || now.Sub(n.pulledAt) < n.cfg.GapTimeout {
		return
	}
	end := n.next
	for end <= n.highest && !n.has(end) && end-n.next < maxPull {
		end++
	}
	to := n.parent
	if n.pullFails%2 == 1 { // every other pull goes elsewhere, then back to the parent
		if alt := n.pickPullSource(now); alt.ID != "" {
			to = alt
		}
	}
	n.pullFails++
	n.pulledAt = now
	n.stats.Pulls++
	n.send(to, &Message{Type: MsgPull, Seq: n.next, Count: uint32(end - n.next)})
}

// pickPullSource picks a random member known to be in the tree above this
// node's depth (so not below it, where the same hole is likely).
func (n *Machine) pickPullSource(now time.Time) PeerInfo {
	var opts []PeerID
	for _, id := range n.memberOrder {
		if m := n.members[id]; m.depth < uint32(n.depth()) && id != n.parent.ID && id != n.cfg.Root.ID &&
			!now.Before(m.coolUntil) && !now.Before(m.bannedUntil) {
			opts = append(opts, id)
		}
	}
	if len(opts) == 0 {
		return PeerInfo{}
	}
	return n.members[opts[n.cfg.Rand.IntN(len(opts))]].info
}

// --- children ---

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

func (n *Machine) myPath() []PeerInfo {
	p := make([]PeerInfo, 0, len(n.path)+1)
	p = append(p, n.path...)
	return append(p, n.cfg.Self)
}

func (n *Machine) stepAttach(now time.Time, from PeerID, m *Message) {
	info := PeerInfo{ID: from, Addrs: m.Addrs}
	reject := func(r Reason) { n.send(info, &Message{Type: MsgReject, Reason: r}) }
	improve := m.Flags&AttachImprove != 0
	switch {
	case n.banned(from, now):
		reject(ReasonBanned)
		return
	case n.state != stateAttached:
		reject(ReasonDetached)
		return
	case from == n.cfg.Self.ID || n.inPath(from):
		// The requester is one of our ancestors: adopting it would close a loop.
		n.event(Event{Type: EvLoopRefused, Peer: from})
		reject(ReasonLoop)
		return
	case from == n.parent.ID:
		reject(ReasonLoop)
		return
	}
	if m.Lost != "" {
		// The requester's parent went away. If it was our child and has been
		// silent for two status intervals, believe it and free the slot now
		// rather than at ChildTimeout; never send anyone back to it.
		if i := n.childIndex(m.Lost); i >= 0 && now.Sub(n.children[i].heardAt) >= 2*n.cfg.StatusInterval {
			n.removeChild(i)
		}
	}
	if i := n.childIndex(from); i >= 0 {
		c := n.children[i]
		c.heardAt = now
		c.info = info
		n.send(info, &Message{Type: MsgAccept, Path: n.myPath(), Depth: uint32(n.depth())})
		n.backfill(now, c, m.Seq)
		return
	}
	if n.free() > 0 {
		n.adopt(now, info, m)
		return
	}
	// Full. A requester that brings more slots than one of our children
	// takes that child's place and adopts it (with its subtree), so capacity
	// rises towards the root and the tree stays shallow; and a tree with no
	// free slot left still lets in a joiner that relays, between a parent and
	// a child. A node is only ever displaced by a strictly bigger one, so the
	// order is monotone and cannot oscillate.
	if m.Free >= 1 {
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
		if victim >= 0 {
			v := n.children[victim]
			n.removeChild(victim)
			n.adopt(now, info, m)
			hint := Candidate{PeerInfo: info, Depth: uint32(n.depth() + 1), Free: m.Free}
			n.send(v.info, &Message{Type: MsgLeave, Candidates: []Candidate{hint}})
			return
		}
	}
	if improve {
		if m.Flags&AttachClimb != 0 && !n.isRoot {
			if room := n.climbRoom(from, m); len(room) > 0 {
				n.send(info, &Message{Type: MsgRedirect, Candidates: room})
				return
			}
		}
		reject(ReasonNoImprove)
		return
	}
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
		reject(ReasonFull)
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
	n.children = append(n.children, c)
	n.statusDirty = true
	n.learn(info, uint32(n.depth()+1), m.Free, true)
	n.event(Event{Type: EvChildAdded, Peer: info.ID})
	n.send(info, &Message{Type: MsgAccept, Path: n.myPath(), Depth: uint32(n.depth())})
	n.backfill(now, c, m.Seq)
}

// --- joining ---

// candidates returns the members this node could ask to adopt it, best
// first.
func (n *Machine) ranked(now time.Time) []*member {
	var out []*member
	for _, id := range n.memberOrder {
		m := n.members[id]
		if now.Before(m.coolUntil) || now.Before(m.bannedUntil) || n.childIndex(id) >= 0 {
			continue
		}
		if m.depth == noDepth && id != n.cfg.Root.ID {
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
	if d == noDepth {
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
	// After a loss or a Leave, try the hints in order without probing: speed
	// matters more than nearness, and improvement fixes nearness later.
	for len(n.hints) > 0 {
		id := n.hints[0]
		n.hints = n.hints[1:]
		if m := n.members[id]; m != nil && !now.Before(m.coolUntil) && !now.Before(m.bannedUntil) && n.childIndex(id) < 0 {
			n.attach(now, m, 0)
			return
		}
	}
	// Probe members whose RTT is unknown, a few at a time. The broadcaster
	// is probed only when nobody else is known: with thousands joining, its
	// upload must not go to pongs and redirects.
	usable := func(id PeerID, m *member) bool {
		return !now.Before(m.coolUntil) && !now.Before(m.bannedUntil) && n.childIndex(id) < 0
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
		m.pingSentAt = now
		n.send(m.info, &Message{Type: MsgPing, Time: now.UnixNano()})
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

// choose asks the best ranked member to adopt this node.
func (n *Machine) choose(now time.Time) {
	n.state = stateDetached
	for _, id := range n.memberOrder {
		n.members[id].pingSentAt = time.Time{}
	}
	if r := n.ranked(now); len(r) > 0 {
		n.attach(now, r[0], 0)
		return
	}
	// Nobody to ask: the broadcaster always answers (with a redirect if full).
	if root := n.members[n.cfg.Root.ID]; root != nil && now.Sub(n.rootTriedAt) >= n.cfg.AttachTimeout/2 && !now.Before(root.bannedUntil) {
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
	}
	var depth uint32
	if flags&AttachClimb != 0 {
		depth = uint32(n.depth())
	}
	n.send(m.info, &Message{Type: MsgAttach, Seq: seq, Capacity: uint32(n.cfg.Slots), Free: n.free(), Addrs: n.cfg.Self.Addrs, Flags: flags, Lost: lost, Depth: depth})
}

func (n *Machine) attachFailed(now time.Time) {
	if m := n.members[n.attachTo]; m != nil {
		m.coolUntil = now.Add(2 * n.cfg.AttachTimeout)
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
		m.coolUntil = now.Add(n.cfg.ImproveInterval)
	}
	n.moving = false
	n.attachTo = ""
}

func (n *Machine) stepPong(now time.Time, from PeerID, p *Message) {
	m := n.members[from]
	if m == nil {
		return
	}
	if rtt := now.Sub(time.Unix(0, p.Time)); rtt > 0 {
		m.rtt = rtt
	} else {
		m.rtt = time.Microsecond
	}
	m.pingSentAt = time.Time{}
	m.depth, m.free = p.Depth, p.Free
	if n.state != stateProbing {
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
		mb.coolUntil = now.Add(n.cfg.AttachTimeout)
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
		if c.ID == n.cfg.Self.ID || c.ID == n.parent.ID || n.childIndex(c.ID) >= 0 || c.Depth+1+climbGain > d {
			continue
		}
		m := n.learn(c.PeerInfo, c.Depth, c.Free, true)
		if m == nil || now.Before(m.coolUntil) || now.Before(m.bannedUntil) {
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
	if moved && old.ID != "" && old.ID != from {
		n.send(old, &Message{Type: MsgLeave})
	}
	n.moving = false
	n.attachTo = ""
	n.state = stateAttached
	n.parent = n.infoOf(from)
	n.parentHeard = now
	n.parentOutSince = time.Time{}
	n.hints = nil
	rejoin := !n.lostAt.IsZero()
	n.lostAt = time.Time{}
	n.everAttached = true
	if moved && wasAttached {
		n.stats.Moves++
	}
	if rejoin {
		n.stats.Rejoins++
	}
	n.setPath(now, m.Path)
	n.event(Event{Type: EvAttached, Peer: from, Depth: n.depth(), Rejoin: rejoin, Moved: moved})
	if (n.depth() >= climbDepth || n.cfg.Slots >= 4 && n.depth() >= 3) && n.cfg.ImproveInterval > 0 {
		// Deep, as joiners in a flash crowd end up: look for a shallower
		// place soon rather than at the next improvement.
		n.nextImprove = minTime(n.nextImprove, now.Add(n.jitter(n.cfg.ImproveInterval/16)))
	}
	n.sendStatus(now)
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

// loseParent starts a rejoin: the hints first, then the ancestors from the
// nearest up (the grandparent has just lost a child, so it has a free slot),
// then whoever else is known.
func (n *Machine) loseParent(now time.Time, why LossReason, hints []PeerID) {
	old := n.parent
	if m := n.members[old.ID]; m != nil && why != LossLoop {
		m.coolUntil = now.Add(2 * n.cfg.ParentTimeout)
		m.depth = noDepth
	}
	n.event(Event{Type: EvParentLost, Peer: old.ID, Loss: why})
	if n.lostAt.IsZero() {
		n.lostAt = now
	}
	n.lostParent = old.ID
	n.parent = PeerInfo{}
	n.hints = append(n.hints[:0], hints...)
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

// --- improving ---

// improve makes at most one move: a node with spare slots tries to move up
// under a shallower ancestor (which may displace a slotless leaf for it);
// otherwise a node moves to a member with room that is clearly nearer than
// its parent and no deeper. Both are rate-limited by ImproveInterval and
// need a real gain, so the tree settles instead of oscillating.
func (n *Machine) improve(now time.Time) {
	if n.moving || n.state != stateAttached {
		return
	}
	d := n.depth()
	if n.cfg.Slots >= 2 && n.free() >= 1 && d >= 2 {
		target := n.path[n.cfg.Rand.IntN(d-1)]
		if m := n.members[target.ID]; m != nil && !now.Before(m.coolUntil) {
			n.attach(now, m, AttachImprove)
			return
		}
	}
	if d >= climbDepth {
		// Deep: ask an ancestor (not the broadcaster, whose upload is for
		// its children; not the parent) for a place higher up.
		target := n.path[1+n.cfg.Rand.IntN(d-2)]
		if m := n.members[target.ID]; m != nil && !now.Before(m.coolUntil) {
			n.attach(now, m, AttachImprove|AttachClimb)
			return
		}
	}
	parent := n.members[n.parent.ID]
	if parent == nil {
		return
	}
	if parent.rtt == 0 {
		parent.pingSentAt = now
		n.send(parent.info, &Message{Type: MsgPing, Time: now.UnixNano()})
		return
	}
	var best *member
	for _, id := range n.memberOrder {
		m := n.members[id]
		if id == n.parent.ID || m.depth == noDepth || m.depth+1 > uint32(d) || m.free == 0 ||
			now.Before(m.coolUntil) || n.childIndex(id) >= 0 {
			continue
		}
		if m.rtt == 0 {
			if m.pingSentAt.IsZero() || now.Sub(m.pingSentAt) > n.cfg.ImproveInterval {
				m.pingSentAt = now
				n.send(m.info, &Message{Type: MsgPing, Time: now.UnixNano()})
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
