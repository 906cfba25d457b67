package chat

import (
	"maps"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// result is a validator's decision, mapped one to one onto pubsub's.
type result uint8

const (
	accept result = iota // deliver and relay
	reject               // invalid: drop, and hold it against the relaying peer
	ignore               // drop quietly: state-dependent, rate-limited or stale
)

func (r result) String() string { return [...]string{"accept", "reject", "ignore"}[r] }

// machineConfig is what a machine needs from the Room's config.
type machineConfig struct {
	Config
	self     peer.ID
	selfKey  crypto.PrivKey // signs the broadcaster's actions
	brKey    crypto.PubKey
	attested *Identity // this node's own verified identity, if any
}

// machine is the chat's state machine, in the manner of mesh.Machine: no
// goroutines, no I/O, no clock. The validators are its check (a function
// of the message, the moderation state and now); deliver applies what
// pubsub delivered; tick runs the timers; what it wants sent and told
// collects in ready. One goroutine owns it (Room.run).
//
// Its parts, a file each: validate.go (check: every message before it is
// relayed), moderation.go (the registers of signed actions, their digest
// and sync, and what the broadcaster and moderators issue), identities.go
// (attestations), comments.go, hearts.go, presence.go (who watches),
// jury.go (reports, juries, votes, mutes) and tick.go (the timers and the
// broadcaster's beat).
type machine struct {
	cfg           machineConfig
	isBroadcaster bool
	rand          *rand.Rand

	// Moderation: for each (op, target) the signed action in force.
	regs   map[string]*signedAction
	modSeq uint64
	digest []byte // of regs; nil when stale
	synced bool
	issued uint64 // the last ID or sequence number this node handed out

	lim limiter

	beat      wireBeat // the broadcaster's last
	haveBeat  bool
	lastFetch time.Time
	// The broadcaster asks its peers for the state twice after joining, in
	// case its node restarted mid-broadcast: its own signed actions come
	// back, and its beats then agree with what the swarm enforces.
	started    time.Time
	recoveries int

	viewers map[peer.ID]*viewer
	seen    map[peer.ID]time.Time  // last heard from, for the jury pool
	idents  map[string]identEntry  // attestation bytes → verification
	known   map[peer.ID]knownIdent // the last verified identity of a peer
	calls   map[uint64]*call
	callFor map[CommentID]uint64
	early   []earlyReport // on the broadcaster: reports waiting for their comment
	// Comments heard before the moderation state was known (held.go),
	// judged and shown once it is.
	held []heldComment

	log      []*Comment
	logIndex map[CommentID]*Comment

	// Hearts. The broadcaster's total is what the tree counted (tickInput)
	// plus what came over the topic from nodes outside a tree; every node
	// floats the rise of the total between beats, less its own taps.
	hearts        uint64    // the broadcast's total, as last known
	heartsKnown   bool      // a viewer has had a beat's total
	topicHearts   uint64    // the broadcaster's: hearts that came as messages
	heartLog      HeartLog  // the broadcaster's: its replay's hearts
	treeSums      HeartSums // the broadcaster's: the tree's sums as last logged
	ownTaps       uint64    // taps of this node not yet seen in a total
	ownTapsAt     time.Time
	pendingHearts int // taps to send over the topic (no Tap)
	// the moments of pendingHearts: their sum from pendingAtBase (ms) and
	// how many said one
	pendingAtBase  time.Time
	pendingAtSum   int64
	pendingAtN     int
	lastHeartFlush time.Time
	presenceDue    time.Time
	presenceBeats  int
	joined         bool
	lastBeatSent   time.Time
	attExpires     time.Time // when this node's own attestation expires (zero: none)

	// The timers (tick.go): when tick last ran, and the earliest expiry
	// among what the machine keeps (nextSweep), lowered as entries come
	// (sweepBy), so that nextTick needs no pass over them.
	lastTick time.Time
	sweepDue time.Time

	rd    ready
	stats Stats
}

// ready is what the machine wants done.
type ready struct {
	events  []Event
	publish [][]byte  // envelopes for the topic
	fetch   []peer.ID // peers to ask for the moderation state, best first
	taps    []Taps    // hearts for the tree (Config.Tap)
	edge    uint64    // the live edge of the broadcaster's beat, for the tree (Config.LiveEdge); 0: none
}

func newMachine(cfg machineConfig) *machine {
	m := &machine{
		cfg:           cfg,
		isBroadcaster: cfg.self == cfg.Broadcaster,
		rand:          cfg.Rand,
		regs:          make(map[string]*signedAction),
		viewers:       make(map[peer.ID]*viewer),
		seen:          make(map[peer.ID]time.Time),
		idents:        make(map[string]identEntry),
		known:         make(map[peer.ID]knownIdent),
		calls:         make(map[uint64]*call),
		callFor:       make(map[CommentID]uint64),
		logIndex:      make(map[CommentID]*Comment),
		stats: Stats{
			Accepted: make(map[string]uint64),
			Rejected: make(map[string]uint64),
			Ignored:  make(map[string]uint64),
		},
	}
	m.synced = m.isBroadcaster
	m.sweepDue = farFuture
	m.attExpires = attestationExpiry(cfg.Attestation)
	if cfg.attested != nil {
		m.known[cfg.self] = knownIdent{id: *cfg.attested, att: cfg.Attestation}
	}
	return m
}

func (m *machine) takeReady() ready {
	rd := m.rd
	m.rd = ready{}
	return rd
}

func (m *machine) emit(e Event) { m.rd.events = append(m.rd.events, e) }

func (m *machine) send(now time.Time, e envelope) {
	e.Broadcast = m.cfg.Broadcast
	e.Sent = now.UnixNano()
	b, err := e.encode()
	if err != nil {
		m.cfg.Logger.Warn("chat: message not sent", "kind", e.kind(), "err", err)
		return
	}
	m.rd.publish = append(m.rd.publish, b)
}

// nextID hands out comment IDs and action sequence numbers: the clock in
// nanoseconds, or one more than the last, so they grow across restarts.
func (m *machine) nextID(now time.Time) uint64 {
	m.issued = max(m.issued+1, uint64(now.UnixNano()))
	return m.issued
}

// deliver applies a message pubsub delivered (after check accepted it).
// via is the peer that relayed it to us.
func (m *machine) deliver(now time.Time, from, via peer.ID, env *envelope) {
	switch env.kind() {
	case kindComment:
		m.heard(now, from)
		m.deliverComment(now, from, env)
	case kindHeart:
		// From a node outside a tree. The broadcaster adds them to the
		// total its beats carry, which is what every node floats.
		m.heard(now, from)
		if m.isBroadcaster {
			m.topicHearts += uint64(env.Heart.Count)
			m.logTopicHearts(now, env.Heart)
		}
	case kindPresence:
		m.heard(now, from)
		m.deliverPresence(now, from, env.Presence)
	case kindReport:
		m.heard(now, from)
		if m.isBroadcaster {
			m.report(now, from, env.Report)
		}
	case kindVote:
		m.heard(now, from)
		m.deliverVote(now, from, env.Vote)
	case kindBeat:
		m.deliverBeat(now, via, env.Beat)
	case kindRequest:
		if m.isBroadcaster && m.isModerator(from) {
			out, err := m.moderate(now, *env.Request)
			if err != nil {
				m.cfg.Logger.Info("moderator request refused", "from", from, "op", env.Request.Op, "err", err)
			}
			m.rd.publish = append(m.rd.publish, out...)
		}
	}
}

// heard puts from in the jury pool, until juryPoolAge from now.
func (m *machine) heard(now time.Time, from peer.ID) {
	m.seen[from] = now
	m.sweepBy(now.Add(juryPoolAge + 1))
}

func (m *machine) statsCopy() Stats {
	return Stats{
		Accepted:  maps.Clone(m.stats.Accepted),
		Rejected:  maps.Clone(m.stats.Rejected),
		Ignored:   maps.Clone(m.stats.Ignored),
		Throttled: m.stats.Throttled,
	}
}
