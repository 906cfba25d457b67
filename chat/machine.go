package chat

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
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

// Pacing: the broadcaster's beats tell viewers how often to send presence
// and hearts, scaled with the audience so that the topic carries about
// presenceRate presence messages and heartRate heart messages a second
// however many watch. Only identified viewers send presence (the count
// comes from the tree), and hearts go up the tree when the node is in one
// (Config.Tap): heartRate paces only nodes outside a tree.
const (
	presenceRate   = 2
	heartRate      = 100
	minPresence    = 30 * time.Second
	maxPresenceInt = 20 * time.Minute
	// A presence beat carries the attestation on join and then every
	// attestEvery-th beat, so that a broadcaster that missed the join (or
	// restarted) learns who it is, while most beats stay small.
	attestEvery = 4
	// ownTapsFor is how long this node's own taps are looked for in the
	// broadcaster's total (its pages floated them at once) before they are
	// given up on.
	ownTapsFor = 30 * time.Second
	minHeart   = time.Second
	maxHeart   = 30 * time.Second
	// A viewer is gone after missing this many presence intervals.
	presenceMisses = 3
	// maxStreamLag bounds how far behind its send time a comment may place
	// itself in the stream (a viewer's latency).
	maxStreamLag = 2 * time.Minute
	// The jury pool: peers heard from within juryPoolAge.
	juryPoolAge  = 10 * time.Minute
	maxOpenCalls = 4
	// fetchBackoff spaces the requests for the moderation state.
	fetchBackoff = 2 * time.Second
	// maxRegisters bounds the moderation state.
	maxRegisters = 16 << 10
	maxCache     = 4096
)

func presenceInterval(audience int) time.Duration {
	return min(max(time.Duration(audience)*time.Second/presenceRate, minPresence), maxPresenceInt)
}

func heartInterval(audience int) time.Duration {
	return min(max(time.Duration(audience)*time.Second/heartRate, minHeart), maxHeart)
}

// machineConfig is what a machine needs from the Room's config.
type machineConfig struct {
	Config
	self     peer.ID
	selfKey  crypto.PrivKey // signs the broadcaster's actions
	brKey    crypto.PubKey
	attested *Identity // this node's own verified identity, if any
}

// machine is the chat's state machine, in the manner of mesh.Node: no
// goroutines, no I/O, no clock. The validators are its check (a function
// of the message, the moderation state and now); deliver applies what
// pubsub delivered; tick runs the timers; what it wants sent and told
// collects in ready. One goroutine owns it.
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
	seen    map[peer.ID]time.Time // last heard from, for the jury pool
	idents  map[string]identEntry // attestation bytes → verification
	known   map[peer.ID]Identity  // the last verified identity of a peer
	calls   map[uint64]*call
	callFor map[CommentID]uint64

	log      []*Comment
	logIndex map[CommentID]*Comment

	// Hearts. The broadcaster's total is what the tree counted (tickInput)
	// plus what came over the topic from nodes outside a tree; every node
	// floats the rise of the total between beats, less its own taps.
	hearts         uint64 // the broadcast's total, as last known
	heartsKnown    bool   // a viewer has had a beat's total
	topicHearts    uint64 // the broadcaster's: hearts that came as messages
	ownTaps        uint64 // taps of this node not yet seen in a total
	ownTapsAt      time.Time
	pendingHearts  int // taps to send over the topic (no Tap)
	lastHeartFlush time.Time
	presenceDue    time.Time
	presenceBeats  int
	joined         bool
	lastBeatSent   time.Time

	rd    ready
	stats Stats
}

type viewer struct {
	identity *Identity
	since    time.Time
	last     time.Time
}

type identEntry struct {
	peer    peer.ID
	id      Identity
	expires time.Time
	err     error // nil, ErrUntrusted, or a forgery
}

type call struct {
	seq      uint64
	comment  CommentID
	text     string
	deadline time.Time
	jurors   map[peer.ID]bool
	votes    map[peer.ID]bool
	closed   bool
}

// ready is what the machine wants done.
type ready struct {
	events  []Event
	publish [][]byte  // envelopes for the topic
	fetch   []peer.ID // peers to ask for the moderation state, best first
	taps    int       // hearts for the tree (Config.Tap)
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
		known:         make(map[peer.ID]Identity),
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
	if cfg.attested != nil {
		m.known[cfg.self] = *cfg.attested
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

// --- validation ---

// check decodes and validates one pubsub message from its (authenticated)
// author, handed to us by src (the author itself, or a relay). It is the
// topic validator.
//
// A message is rejected only for what every honest peer would reject
// whatever its state (malformed, forged, signed wrongly), or for a sender
// that floods its own messages far past its rate: with peer scoring on,
// rejections cost the peer that sent them, and honest relays must never
// pay. What depends on state (moderation, calls, rates seen through
// relays) is ignored.
func (m *machine) check(now time.Time, from, src peer.ID, data []byte) (*envelope, result, error) {
	env := new(envelope)
	if err := env.unmarshal(data); err != nil {
		m.stats.Rejected["malformed"]++
		return nil, reject, err
	}
	res, err := m.validate(now, from, src, env)
	k := env.kind().String()
	switch res {
	case accept:
		m.stats.Accepted[k]++
	case reject:
		m.stats.Rejected[k]++
	case ignore:
		m.stats.Ignored[k]++
	}
	return env, res, err
}

func (m *machine) validate(now time.Time, from, src peer.ID, env *envelope) (result, error) {
	if env.Broadcast != m.cfg.Broadcast {
		return reject, fmt.Errorf("%w: message of broadcast %q", ErrForged, env.Broadcast)
	}
	if from == "" {
		return reject, fmt.Errorf("%w: unsigned message", ErrForged)
	}
	k := env.kind()
	if k == kindAction {
		// Anyone may pass a broadcaster's action on; its own signature
		// and sequence number are what count, not its send time.
		return m.validateAction(now, env.Action)
	}
	if d := now.Sub(time.Unix(0, env.Sent)); d > m.cfg.MaxSkew || d < -m.cfg.MaxSkew {
		return ignore, ErrStale
	}
	switch k {
	case kindBeat:
		if from != m.cfg.Broadcaster {
			return reject, fmt.Errorf("%w: a beat from %s", ErrForged, from)
		}
		return m.take(now, from, src, k)
	case kindRequest:
		switch env.Request.Op {
		case OpCommentsOff, OpBlock, OpDelete:
		default:
			return reject, fmt.Errorf("%w: a moderator may not %v", ErrForged, env.Request.Op)
		}
		if !m.isModerator(from) {
			return ignore, ErrNotModerator
		}
		return m.take(now, from, src, k)
	}
	// Presence is relayed even before this node knows the moderation
	// state (checked against what it does know): a viewer's join is sent
	// once, and a neighbour that joined a moment later must not swallow it
	// for a whole presence interval. Everything else waits for the state.
	if !m.synced && k != kindPresence {
		return ignore, ErrNotReady
	}
	var att []byte
	switch {
	case env.Comment != nil:
		att = env.Comment.Attestation
	case env.Presence != nil:
		att = env.Presence.Attestation
	}
	who, err := m.identity(now, from, att)
	if err != nil {
		return reject, err
	}
	if m.isBlocked(from, who) {
		return ignore, ErrBlocked
	}
	switch k {
	case kindComment:
		if err := m.mayComment(now, from, who); err != nil {
			return ignore, err
		}
		id := CommentID{from, env.Comment.ID}
		if m.isDeleted(id) {
			return ignore, ErrDeleted
		}
		if m.logIndex[id] != nil {
			return ignore, ErrDuplicate
		}
	case kindReport:
		if m.isMuted(now, from, who) {
			return ignore, ErrMuted
		}
	case kindVote:
		c := m.calls[env.Vote.Call]
		if c == nil {
			// The vote may have overtaken the call here: relay it (the
			// rate limit bounds that), only the broadcaster counts.
			if m.isBroadcaster {
				return ignore, ErrNoCall
			}
			break
		}
		if c.closed || !now.Before(c.deadline) {
			return ignore, ErrNoCall
		}
		if !c.jurors[from] {
			// Ignored, not rejected: a relay that has not seen the call
			// yet passed it on in good faith.
			return ignore, ErrNotJuror
		}
		if _, voted := c.votes[from]; voted {
			return ignore, ErrDuplicate
		}
	}
	return m.take(now, from, src, k)
}

// take charges the sender's bucket for a message of kind k. Over the rate,
// the message is ignored; but a sender that hands us its own messages
// beyond even a generous second bucket (twice the burst and ten more: no
// honest sender, whose own room enforces the rate, gets there through
// network jitter) is flooding, and is rejected.
func (m *machine) take(now time.Time, from, src peer.ID, k kind) (result, error) {
	r := m.cfg.Limits.rate(k)
	if src == from && !m.lim.allow(now, from, k+numKinds, Rate{Every: r.Every, Burst: 2*r.Burst + 10}, true) {
		m.stats.Throttled++
		return reject, fmt.Errorf("%w: flooding", ErrRateLimited)
	}
	if !m.lim.allow(now, from, k, r, true) {
		m.stats.Throttled++
		return ignore, ErrRateLimited
	}
	return accept, nil
}

// mayComment says whether the moderation state lets from comment now.
func (m *machine) mayComment(now time.Time, from peer.ID, who *Identity) error {
	if m.isMuted(now, from, who) {
		return ErrMuted
	}
	if m.privileged(from) {
		return nil
	}
	if m.reg(OpCommentsOff, "").on() {
		return ErrCommentsOff
	}
	if f := m.reg(OpFollowersOnly, ""); f.on() {
		if who == nil || !slices.Contains(f.List, who.AccountKey()) {
			return ErrFollowersOnly
		}
	}
	return nil
}

func (m *machine) validateAction(now time.Time, s *signedAction) (result, error) {
	if s.Broadcast != m.cfg.Broadcast {
		return reject, fmt.Errorf("%w: action of broadcast %q", ErrForged, s.Broadcast)
	}
	if err := s.verify(m.cfg.brKey); err != nil {
		return reject, err
	}
	return m.apply(now, s)
}

// apply puts a verified action in force, unless a newer one for the same
// register already is. Actions take effect at validation, so that the
// next message is checked against them even before pubsub delivers.
func (m *machine) apply(now time.Time, s *signedAction) (result, error) {
	m.issued = max(m.issued, s.Seq)
	if s.Op == OpJury {
		return m.openCall(now, s)
	}
	k := s.key()
	cur := m.regs[k]
	if cur != nil && cur.Seq >= s.Seq {
		return ignore, ErrDuplicate
	}
	if cur == nil && len(m.regs) >= maxRegisters {
		return ignore, ErrStateFull
	}
	m.regs[k] = s
	m.digest = nil
	m.modSeq = max(m.modSeq, s.Seq)
	ev := &Moderated{Op: s.Op, Target: s.Target, On: s.On, Seq: s.Seq}
	if s.Op == OpMute && s.Until != MuteForever {
		ev.Until = time.Unix(0, s.Until)
	}
	if s.Op == OpDelete {
		if id, err := ParseCommentID(s.Target); err == nil {
			if c := m.logIndex[id]; c != nil {
				c.Deleted = true
			}
		}
	}
	m.emit(ev)
	if !m.synced && m.haveBeat && bytes.Equal(m.stateDigest(), m.beat.Digest) {
		m.synced = true
	}
	return accept, nil
}

func (m *machine) openCall(now time.Time, s *signedAction) (result, error) {
	if _, ok := m.calls[s.Seq]; ok {
		return ignore, ErrDuplicate
	}
	deadline := time.Unix(0, s.Call.Deadline)
	if !now.Before(deadline) {
		return ignore, ErrNoCall
	}
	m.pruneCalls(now)
	c := &call{
		seq:      s.Seq,
		comment:  CommentID{s.Call.Author, s.Call.Comment},
		text:     s.Call.Text,
		deadline: deadline,
		jurors:   make(map[peer.ID]bool, len(s.Call.Jurors)),
		votes:    make(map[peer.ID]bool),
	}
	for _, j := range s.Call.Jurors {
		c.jurors[j] = true
	}
	m.calls[s.Seq] = c
	m.callFor[c.comment] = s.Seq
	if c.jurors[m.cfg.self] {
		m.emit(&Summons{Call: c.seq, Comment: c.comment, Text: c.text, Deadline: deadline})
	}
	return accept, nil
}

// pruneCalls forgets calls over for a while.
func (m *machine) pruneCalls(now time.Time) {
	for seq, c := range m.calls {
		if now.Sub(c.deadline) > juryPoolAge {
			delete(m.calls, seq)
			if m.callFor[c.comment] == seq {
				delete(m.callFor, c.comment)
			}
		}
	}
}

// --- moderation state ---

func (m *machine) reg(op Op, target string) *signedAction {
	return m.regs[(&action{Op: op, Target: target}).key()]
}

func (s *signedAction) on() bool { return s != nil && s.On }

func (m *machine) privileged(p peer.ID) bool {
	return p == m.cfg.Broadcaster || m.isModerator(p)
}

func (m *machine) isModerator(p peer.ID) bool { return m.reg(OpModerator, userOfPeer(p)).on() }

// users returns the moderation targets a sender is: its peer, and its
// account when it has a verified identity.
func users(p peer.ID, who *Identity) []string {
	u := []string{userOfPeer(p)}
	if who != nil {
		u = append(u, userOfAccount(who.AccountKey()))
	}
	return u
}

func (m *machine) isBlocked(p peer.ID, who *Identity) bool {
	if p == m.cfg.Broadcaster {
		return false
	}
	for _, u := range users(p, who) {
		if m.reg(OpBlock, u).on() {
			return true
		}
	}
	return false
}

func (m *machine) isMuted(now time.Time, p peer.ID, who *Identity) bool {
	if p == m.cfg.Broadcaster {
		return false
	}
	for _, u := range users(p, who) {
		if r := m.reg(OpMute, u); r != nil && r.Until > now.UnixNano() {
			return true
		}
	}
	return false
}

func (m *machine) isDeleted(id CommentID) bool { return m.reg(OpDelete, id.String()) != nil }

// stateDigest sums up the actions in force: two nodes with the same digest
// enforce the same moderation.
func (m *machine) stateDigest() []byte {
	if m.digest == nil {
		keys := slices.Sorted(maps.Keys(m.regs))
		h := sha256.New()
		var seq [8]byte
		for _, k := range keys {
			h.Write([]byte(k))
			binary.BigEndian.PutUint64(seq[:], m.regs[k].Seq)
			h.Write(seq[:])
		}
		m.digest = h.Sum(nil)[:16]
	}
	return m.digest
}

// state returns the actions in force, as signed, oldest first: what a
// joining peer is sent.
func (m *machine) state() [][]byte {
	regs := slices.SortedFunc(maps.Values(m.regs), func(a, b *signedAction) int { return cmp.Compare(a.Seq, b.Seq) })
	out := make([][]byte, len(regs))
	for i, s := range regs {
		out[i] = s.encode()
	}
	return out
}

// applyState applies actions fetched from a peer (verified by the caller),
// then checks the result against the last beat.
func (m *machine) applyState(now time.Time, actions []*signedAction) {
	for _, s := range actions {
		if s.Broadcast == m.cfg.Broadcast && s.Op != OpJury {
			_, _ = m.apply(now, s)
		}
	}
	if !m.synced && m.haveBeat && bytes.Equal(m.stateDigest(), m.beat.Digest) {
		m.synced = true
	}
}

// wantFetch asks the shell for the state, at most once per fetchBackoff.
func (m *machine) wantFetch(now time.Time, peers ...peer.ID) {
	if now.Sub(m.lastFetch) < fetchBackoff {
		return
	}
	m.lastFetch = now
	for _, p := range peers {
		if p != "" && p != m.cfg.self && !slices.Contains(m.rd.fetch, p) {
			m.rd.fetch = append(m.rd.fetch, p)
		}
	}
	if len(m.rd.fetch) == 0 {
		m.rd.fetch = []peer.ID{""} // none in particular: the shell asks the topic's peers
	}
}

// moderation returns the state for the application.
func (m *machine) moderation(now time.Time) Moderation {
	st := Moderation{Synced: m.synced, Seq: m.modSeq, Muted: make(map[string]time.Time)}
	for _, s := range m.regs {
		switch s.Op {
		case OpCommentsOff:
			st.CommentsOff = s.On
		case OpFollowersOnly:
			st.FollowersOnly = s.On
			if s.On {
				st.Follows = slices.Clone(s.List)
			}
		case OpBlock:
			if s.On {
				st.Blocked = append(st.Blocked, s.Target)
			}
		case OpModerator:
			if p, ok := peerOfUser(s.Target); ok && s.On {
				st.Moderators = append(st.Moderators, p)
			}
		case OpMute:
			if s.Until > now.UnixNano() {
				t := time.Time{}
				if s.Until != MuteForever {
					t = time.Unix(0, s.Until)
				}
				st.Muted[s.Target] = t
			}
		case OpDelete:
			st.Deleted++
		}
	}
	slices.Sort(st.Blocked)
	slices.Sort(st.Moderators)
	return st
}

// --- identities ---

// identity verifies a sender's attestation (cached by its bytes): nil for
// an anonymous sender, an error for a forged attestation (one whose
// signature does not verify under the issuer key it names, or that names
// another peer: every peer judges that alike, whatever keys it trusts). An
// attestation from an untrusted key or past its expiry leaves the sender
// anonymous.
func (m *machine) identity(now time.Time, from peer.ID, att []byte) (*Identity, error) {
	if len(att) == 0 {
		return nil, nil
	}
	e, ok := m.idents[string(att)]
	if !ok {
		e = m.verifyAttestation(now, att)
		if len(m.idents) >= maxCache {
			clear(m.idents)
		}
		m.idents[string(att)] = e
	}
	switch {
	case e.err != nil && e.err != ErrUntrusted:
		return nil, e.err
	case e.peer != from:
		return nil, fmt.Errorf("%w: for %s, presented by %s", ErrWrongPeer, e.peer, from)
	case e.err == ErrUntrusted, !now.Before(e.expires):
		return nil, nil
	}
	id := e.id
	if len(m.known) >= maxCache {
		clear(m.known)
	}
	m.known[from] = id
	return &id, nil
}

func (m *machine) verifyAttestation(now time.Time, att []byte) identEntry {
	a, err := ParseAttestation(att)
	if err != nil {
		return identEntry{err: err}
	}
	// The signature is checked under the issuer key the attestation
	// names, trusted or not, then trust is looked up; peer and expiry are
	// checked on each use, so the entry can be cached.
	e := identEntry{peer: a.Peer, id: a.Identity(), expires: a.Expires}
	if a.Verify([]ed25519.PublicKey{a.Issuer}, a.Peer, a.Expires.Add(-time.Nanosecond)) != nil {
		e.err = ErrBadSignature
	} else if m.cfg.trust.Verify(a, a.Peer, a.Expires.Add(-time.Nanosecond)) != nil {
		e.err = ErrUntrusted
	}
	return e
}

// author describes a sender for the application.
func (m *machine) author(p peer.ID, who *Identity) Author {
	a := Author{Peer: p, Identity: who, Broadcaster: p == m.cfg.Broadcaster, Moderator: m.isModerator(p)}
	return a
}

// --- delivery ---

// deliver applies a message pubsub delivered (after check accepted it).
// via is the peer that relayed it to us.
func (m *machine) deliver(now time.Time, from, via peer.ID, env *envelope) {
	switch env.kind() {
	case kindComment:
		m.seen[from] = now
		m.deliverComment(now, from, env)
	case kindHeart:
		// From a node outside a tree. The broadcaster adds them to the
		// total its beats carry, which is what every node floats.
		m.seen[from] = now
		if m.isBroadcaster {
			m.topicHearts += uint64(env.Heart.Count)
		}
	case kindPresence:
		m.seen[from] = now
		m.deliverPresence(now, from, env.Presence)
	case kindReport:
		m.seen[from] = now
		if m.isBroadcaster {
			m.report(now, from, env.Report)
		}
	case kindVote:
		m.seen[from] = now
		if c := m.calls[env.Vote.Call]; c != nil && c.jurors[from] && !c.closed {
			if _, voted := c.votes[from]; !voted {
				c.votes[from] = env.Vote.Guilty
				if m.isBroadcaster {
					m.tally(now, c)
				}
			}
		}
	case kindBeat:
		m.beat = *env.Beat
		m.beat.Digest = bytes.Clone(env.Beat.Digest)
		m.haveBeat = true
		if !m.isBroadcaster {
			if m.heartsKnown {
				m.riseTo(now, m.beat.Hearts)
			} else {
				m.hearts, m.heartsKnown = m.beat.Hearts, true
			}
			if !bytes.Equal(m.stateDigest(), m.beat.Digest) {
				if m.modSeq <= m.beat.ModSeq {
					m.wantFetch(now, via, m.cfg.Broadcaster)
				}
			} else {
				m.synced = true
			}
		}
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

// riseTo takes a new heart total and floats its rise, less this node's own
// taps (its pages floated those when they were tapped).
func (m *machine) riseTo(now time.Time, total uint64) {
	if total <= m.hearts {
		return
	}
	rise := total - m.hearts
	m.hearts = total
	if m.ownTaps > 0 && now.Sub(m.ownTapsAt) > ownTapsFor {
		m.ownTaps = 0 // lost on the way (a relay died): stop looking
	}
	own := min(rise, m.ownTaps)
	m.ownTaps -= own
	if rise > own {
		m.emit(&Hearts{Count: int(min(rise-own, 1<<31-1)), Total: total})
	}
}

func (m *machine) knownIdentity(p peer.ID) *Identity {
	if id, ok := m.known[p]; ok {
		return &id
	}
	return nil
}

func (m *machine) deliverComment(now time.Time, from peer.ID, env *envelope) {
	c := env.Comment
	who, err := m.identity(now, from, c.Attestation)
	if err != nil {
		return
	}
	id := CommentID{from, c.ID}
	// The state may have changed since the message was validated.
	if m.isBlocked(from, who) || m.mayComment(now, from, who) != nil || m.isDeleted(id) || m.logIndex[id] != nil {
		return
	}
	sent := time.Unix(0, env.Sent)
	at := sent
	if c.At > 0 {
		at = time.Unix(0, c.At)
		if at.After(sent) {
			at = sent
		}
		if sent.Sub(at) > maxStreamLag {
			at = sent.Add(-maxStreamLag)
		}
	}
	entry := &Comment{ID: id, Author: m.author(from, who), Text: c.Text, At: at, Received: now}
	if m.cfg.MaxLog > 0 {
		if len(m.log) >= m.cfg.MaxLog {
			drop := max(1, len(m.log)/10)
			for _, old := range m.log[:drop] {
				delete(m.logIndex, old.ID)
			}
			m.log = slices.Delete(m.log, 0, drop)
		}
		m.log = append(m.log, entry)
		m.logIndex[id] = entry
	}
	ev := *entry
	m.emit(&ev)
}

func (m *machine) deliverPresence(now time.Time, from peer.ID, p *wirePresence) {
	if p.State == presenceLeave {
		delete(m.viewers, from)
		return
	}
	who, err := m.identity(now, from, p.Attestation)
	if err != nil {
		return
	}
	v := m.viewers[from]
	if who == nil && p.Attestation == nil {
		// A beat without the attestation: the identity comes from the
		// join (or an earlier beat that carried it).
		if v == nil {
			who = m.knownIdentity(from)
		} else {
			who = v.identity
		}
	}
	if who == nil {
		if v != nil {
			delete(m.viewers, from) // its identity expired: counted as anonymous
		}
		return
	}
	if v == nil {
		if len(m.viewers) >= maxRegisters {
			return
		}
		v = &viewer{since: now}
		m.viewers[from] = v
	}
	v.identity, v.last = who, now
}

// --- the broadcaster's jury ---

func (m *machine) report(now time.Time, by peer.ID, r *wireReport) {
	id := CommentID{r.Author, r.Comment}
	m.emit(&Reported{Comment: id, By: by})
	c := m.logIndex[id]
	if c == nil || c.Deleted || c.Author.Broadcaster || m.isModerator(c.Author.Peer) || by == c.Author.Peer {
		return
	}
	if _, ok := m.callFor[id]; ok {
		return // one jury per comment
	}
	open := 0
	for _, c := range m.calls {
		if !c.closed {
			open++
		}
	}
	if open >= maxOpenCalls {
		return
	}
	var pool []peer.ID
	for p, t := range m.seen {
		if now.Sub(t) < juryPoolAge {
			pool = append(pool, p)
		}
	}
	for p := range m.viewers {
		if _, ok := m.seen[p]; !ok {
			pool = append(pool, p)
		}
	}
	pool = slices.DeleteFunc(pool, func(p peer.ID) bool {
		return p == id.Author || p == by || p == m.cfg.Broadcaster || m.isBlocked(p, m.knownIdentity(p))
	})
	if len(pool) == 0 {
		m.cfg.Logger.Info("report: nobody to judge it", "comment", id)
		return
	}
	slices.Sort(pool) // the same draw for the same seed, whatever the map order
	m.rand.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	jurors := pool[:min(len(pool), m.cfg.JurySize)]
	a := action{Op: OpJury, Target: id.String(), Call: &wireCall{
		Author: id.Author, Comment: id.Seq, Text: c.Text,
		Deadline: now.Add(m.cfg.JuryTimeout).UnixNano(), Jurors: jurors,
	}}
	b, err := m.issue(now, a)
	if err != nil {
		m.cfg.Logger.Warn("jury call", "err", err)
		return
	}
	m.rd.publish = append(m.rd.publish, b)
	// Remember the call now, so a second report of the same comment does
	// not call another jury before this one comes back through pubsub.
	m.callFor[id] = 0
}

// tally decides a call once a majority is certain either way.
func (m *machine) tally(now time.Time, c *call) {
	n := len(c.jurors)
	var guilty, innocent int
	for _, g := range c.votes {
		if g {
			guilty++
		} else {
			innocent++
		}
	}
	switch {
	case 2*guilty > n:
		c.closed = true
		v := &Verdict{Call: c.seq, Comment: c.comment, Guilty: true, For: guilty, Against: innocent, Jurors: n}
		v.Until = m.mute(now, c.comment)
		m.emit(v)
	case 2*innocent >= n:
		c.closed = true
		m.emit(&Verdict{Call: c.seq, Comment: c.comment, For: guilty, Against: innocent, Jurors: n})
	}
}

// mute mutes a convicted author (its peer, and its account if it had one)
// for MuteFor, or for the rest of the broadcast if it was muted before.
func (m *machine) mute(now time.Time, id CommentID) time.Time {
	var who *Identity
	if c := m.logIndex[id]; c != nil {
		who = c.Author.Identity
	}
	targets := users(id.Author, who)
	until := now.Add(m.cfg.MuteFor).UnixNano()
	for _, u := range targets {
		if m.reg(OpMute, u) != nil {
			until = MuteForever // a repeat offender
		}
	}
	for _, u := range targets {
		b, err := m.issue(now, action{Op: OpMute, Target: u, Until: until})
		if err != nil {
			m.cfg.Logger.Warn("mute", "err", err)
			continue
		}
		m.rd.publish = append(m.rd.publish, b)
	}
	if until == MuteForever {
		return time.Time{}
	}
	return time.Unix(0, until)
}

// --- what this node sends ---

// issue signs an action as the broadcaster and returns its envelope, for
// the caller to publish (or queue). It takes effect here when its own
// publication passes validation.
func (m *machine) issue(now time.Time, a action) ([]byte, error) {
	if !m.isBroadcaster || m.cfg.selfKey == nil {
		return nil, ErrNotBroadcaster
	}
	a.Broadcast = m.cfg.Broadcast
	a.Seq = m.nextID(now)
	s, err := signAction(a, m.cfg.selfKey)
	if err != nil {
		return nil, err
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Action: s}
	return e.encode()
}

// moderate carries out a moderation request and returns the envelopes to
// publish: as the broadcaster, the signed actions (a block or unblock of a
// peer also covers its verified account); as a moderator, a request that
// the broadcaster do it.
func (m *machine) moderate(now time.Time, a action) ([][]byte, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !m.isBroadcaster {
		if !m.isModerator(m.cfg.self) {
			return nil, ErrNotModerator
		}
		switch a.Op {
		case OpCommentsOff, OpBlock, OpDelete:
		default:
			return nil, ErrNotBroadcaster
		}
		e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Request: &a}
		b, err := e.encode()
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	actions := []action{a}
	if a.Op == OpBlock {
		if p, ok := peerOfUser(a.Target); ok {
			if p == m.cfg.Broadcaster {
				return nil, fmt.Errorf("%w: the broadcaster cannot block itself", ErrMalformed)
			}
			if id, ok := m.known[p]; ok {
				b := a
				b.Target = userOfAccount(id.AccountKey())
				actions = append(actions, b)
			}
		}
	}
	if len(m.regs)+len(actions) > maxRegisters {
		return nil, ErrStateFull
	}
	var out [][]byte
	for _, a := range actions {
		b, err := m.issue(now, a)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// comment builds this node's comment, or says why it would be refused.
func (m *machine) comment(now time.Time, text string, at time.Time) (CommentID, []byte, error) {
	if !m.synced {
		return CommentID{}, nil, ErrNotReady
	}
	self := m.cfg.self
	who := m.cfg.attested
	if who != nil && !now.Before(m.attestedExpiry()) {
		who = nil
	}
	if m.isBlocked(self, who) {
		return CommentID{}, nil, ErrBlocked
	}
	if err := m.mayComment(now, self, who); err != nil {
		return CommentID{}, nil, err
	}
	if !m.lim.allow(now, self, kindComment, m.cfg.Limits.Comment, false) {
		return CommentID{}, nil, ErrRateLimited
	}
	c := &wireComment{ID: m.nextID(now), Text: text}
	if !at.IsZero() {
		c.At = at.UnixNano()
	}
	if who != nil {
		c.Attestation = m.cfg.Attestation
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Comment: c}
	b, err := e.encode()
	if err != nil {
		return CommentID{}, nil, err
	}
	// Check it as a receiver will, without charging the bucket.
	var probe envelope
	if err := probe.unmarshal(b); err != nil {
		return CommentID{}, nil, err
	}
	return CommentID{self, c.ID}, b, nil
}

func (m *machine) attestedExpiry() time.Time {
	if m.cfg.Attestation == nil {
		return time.Time{}
	}
	a, err := ParseAttestation(m.cfg.Attestation)
	if err != nil {
		return time.Time{}
	}
	return a.Expires
}

func (m *machine) reportComment(now time.Time, id CommentID) ([]byte, error) {
	if !m.synced {
		return nil, ErrNotReady
	}
	if m.logIndex[id] == nil {
		return nil, fmt.Errorf("%w: comment %s not seen here", ErrNoCall, id)
	}
	if !m.lim.allow(now, m.cfg.self, kindReport, m.cfg.Limits.Report, false) {
		return nil, ErrRateLimited
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Report: &wireReport{Author: id.Author, Comment: id.Seq}}
	return e.encode()
}

func (m *machine) vote(now time.Time, callSeq uint64, guilty bool) ([]byte, error) {
	c := m.calls[callSeq]
	if c == nil || c.closed || !now.Before(c.deadline) {
		return nil, ErrNoCall
	}
	if !c.jurors[m.cfg.self] {
		return nil, ErrNotJuror
	}
	if _, voted := c.votes[m.cfg.self]; voted {
		return nil, ErrDuplicate
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Vote: &wireVote{Call: callSeq, Guilty: guilty}}
	return e.encode()
}

// heart counts this node's taps. With a tree (Config.Tap) they go up it
// with the mesh's statuses; without, over the topic, aggregated once per
// heart interval.
func (m *machine) heart(now time.Time, n int) {
	if n <= 0 {
		return
	}
	n = min(n, MaxHearts)
	m.ownTaps = min(m.ownTaps+uint64(n), 10*MaxHearts)
	m.ownTapsAt = now
	if m.cfg.Tap != nil {
		m.rd.taps += n
		return
	}
	m.pendingHearts = min(m.pendingHearts+n, MaxHearts)
}

// leave returns the presence leave for Close, or nil.
func (m *machine) leave(now time.Time) []byte {
	if !m.joined {
		return nil
	}
	m.joined = false
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Presence: &wirePresence{State: presenceLeave}}
	b, _ := e.encode() // no strings but the broadcast ID, which Join checked
	return b
}

// --- timers ---

// tickInput is what the shell reads from the application for a tick.
type tickInput struct {
	audience int    // broadcaster: tree nodes below the root
	web      int    // broadcaster: browsers the whole tree serves
	hearts   uint64 // broadcaster: hearts the tree counted
}

func (m *machine) tick(now time.Time, in tickInput) {
	audience := m.liveCount(in)
	if m.isBroadcaster {
		m.riseTo(now, in.hearts+m.topicHearts)
		if now.Sub(m.lastBeatSent) >= m.cfg.BeatInterval {
			m.lastBeatSent = now
			m.send(now, envelope{Beat: &wireBeat{
				Audience:   uint32(min(audience, 1<<32-1)),
				Hearts:     m.hearts,
				PresenceMS: uint32(presenceInterval(audience) / time.Millisecond),
				HeartMS:    uint32(heartInterval(audience) / time.Millisecond),
				ModSeq:     m.modSeq,
				Digest:     m.stateDigest(),
			}})
		}
	}
	// Hearts leave aggregated, at the pace the broadcaster asks for.
	hi := minHeart
	if m.haveBeat && m.beat.HeartMS > 0 {
		hi = min(max(time.Duration(m.beat.HeartMS)*time.Millisecond, minHeart), maxHeart)
	}
	if m.pendingHearts > 0 && m.synced && now.Sub(m.lastHeartFlush) >= hi {
		m.lastHeartFlush = now
		m.send(now, envelope{Heart: &wireHeart{Count: uint32(m.pendingHearts)}})
		m.pendingHearts = 0
	}
	// Presence: identified viewers only, so that the broadcaster can list
	// them (the tree counts everyone). The attestation goes with the join
	// and every attestEvery-th beat.
	pi := m.presenceEvery()
	if !m.isBroadcaster && m.synced && m.cfg.attested != nil && now.Before(m.attestedExpiry()) && !now.Before(m.presenceDue) {
		state := uint32(presenceBeat)
		if !m.joined {
			state = presenceJoin
			m.joined = true
			m.presenceBeats = 0
		}
		p := &wirePresence{State: state}
		if m.presenceBeats%attestEvery == 0 {
			p.Attestation = m.cfg.Attestation
		}
		m.presenceBeats++
		m.send(now, envelope{Presence: p})
		// Jitter, so that a crowd that joined together does not beat together.
		m.presenceDue = now.Add(pi*3/4 + time.Duration(m.rand.Int64N(int64(pi/2))))
	}
	for p, v := range m.viewers {
		if now.Sub(v.last) > presenceMisses*pi {
			delete(m.viewers, p)
		}
	}
	for p, t := range m.seen {
		if now.Sub(t) > juryPoolAge {
			delete(m.seen, p)
		}
	}
	for _, c := range m.calls {
		if !c.closed && !now.Before(c.deadline) {
			c.closed = true
			if m.isBroadcaster {
				var guilty, innocent int
				for _, g := range c.votes {
					if g {
						guilty++
					} else {
						innocent++
					}
				}
				m.emit(&Verdict{Call: c.seq, Comment: c.comment, For: guilty, Against: innocent, Jurors: len(c.jurors)})
			}
		}
	}
	m.pruneCalls(now)
	if m.started.IsZero() {
		m.started = now
	}
	if m.isBroadcaster && m.recoveries < 2 && now.Sub(m.started) >= time.Duration(1+5*m.recoveries)*3*time.Second {
		m.recoveries++
		m.lastFetch = time.Time{}
		m.wantFetch(now)
	}
	if !m.synced && !m.haveBeat && now.Sub(m.lastFetch) > 5*fetchBackoff {
		// No beat yet: ask around anyway (the shell adds its topic peers).
		m.wantFetch(now, m.cfg.Broadcaster)
	}
}

func (m *machine) presenceEvery() time.Duration {
	if m.haveBeat && m.beat.PresenceMS > 0 {
		return min(max(time.Duration(m.beat.PresenceMS)*time.Millisecond, minPresence), maxPresenceInt)
	}
	return minPresence
}

// liveCount is the broadcaster's count of live viewers: the tree's nodes
// and the browsers they serve, both summed up the tree.
func (m *machine) liveCount(in tickInput) int {
	return max(in.audience, 0) + max(in.web, 0)
}

// viewersNow returns who watches, for the application.
func (m *machine) viewersNow(in tickInput) Viewers {
	v := Viewers{Hearts: m.hearts}
	if m.isBroadcaster {
		v.Live = m.liveCount(in)
	} else {
		v.Live = int(m.beat.Audience)
	}
	for p, w := range m.viewers {
		if w.identity != nil {
			v.Identified = append(v.Identified, Viewer{Peer: p, Identity: *w.identity, Since: w.since})
		}
	}
	slices.SortFunc(v.Identified, func(a, b Viewer) int {
		if c := b.Since.Compare(a.Since); c != 0 {
			return c
		}
		return strings.Compare(string(a.Peer), string(b.Peer))
	})
	v.Live = max(v.Live, len(v.Identified))
	v.Anonymous = v.Live - len(v.Identified)
	return v
}

// commentLog returns the kept comments in stream order.
func (m *machine) commentLog() []Comment {
	out := make([]Comment, len(m.log))
	for i, c := range m.log {
		out[i] = *c
	}
	slices.SortStableFunc(out, func(a, b Comment) int { return a.At.Compare(b.At) })
	return out
}

func (m *machine) statsCopy() Stats {
	return Stats{
		Accepted:  maps.Clone(m.stats.Accepted),
		Rejected:  maps.Clone(m.stats.Rejected),
		Ignored:   maps.Clone(m.stats.Ignored),
		Throttled: m.stats.Throttled,
	}
}
