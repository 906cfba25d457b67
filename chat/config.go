package chat

import (
	"crypto/ed25519"
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/clock"
)

// TopicPrefix begins the GossipSub topic of every room: the topic is
// TopicPrefix + the broadcast ID.
const TopicPrefix = "/peerscope/chat/1.0.0/"

// StateProtocol begins the stream protocol over which a room hands its
// moderation state (every action in force, as signed) to a peer that
// joins: StateProtocol + "/" + the broadcast ID.
const StateProtocol = "/peerscope/chat-state/1.0.0"

// Config describes a Room. Broadcast and Broadcaster are required; the
// zero value of every other field means its default.
type Config struct {
	// Broadcast is the broadcast's ID; it names the topic and is in every
	// message, so that nothing of one broadcast's chat is accepted in
	// another's.
	Broadcast string
	// Broadcaster is the broadcaster's peer; its key (inlined in the ID, as
	// ed25519 IDs are) signs moderation. The room on the broadcaster's own
	// host is the broadcaster's room: it beats, sequences moderation and
	// runs juries.
	Broadcaster peer.ID
	// Attestation is this node's identity attestation (Attestation.Marshal),
	// or nil: without one, its viewer comments anonymously.
	Attestation []byte
	// Trusted are bootstrap keys whose attestations are believed whenever
	// they were issued.
	Trusted []ed25519.PublicKey
	// Trust, if set, is believed too, with its keys' validity windows and
	// revocations (what the bootstraps publish as they rotate keys): an
	// attestation a retired key signed after it was retired is refused.
	Trust *identity.TrustSet
	// TrustSource, if set, gives the trust set as it is now: the room asks
	// it whenever it wakes (a message to check or deliver, a call, a timer),
	// before it handles what woke it, and, when it returns another set (the
	// node read its bootstraps' keys and revocations again), judges every
	// identity afresh with it (and Trusted): a revoked attestation's holder
	// is anonymous from then on, in a room that has been running for hours.
	// It is called on the room's goroutine: it must return at once and
	// must not call the Room.
	TrustSource func() *identity.TrustSet
	// AttestationSource, if set, gives this node's attestation as it is
	// now (nil: anonymous), asked like TrustSource: a sign-in or a
	// sign-out reaches a running room.
	AttestationSource func() []byte

	trust *identity.TrustSet // Trust with Trusted, set by withDefaults

	// Clock is the time source (the system clock by default).
	Clock clock.Clock
	// Logger receives the room's logs (none by default).
	Logger *slog.Logger
	// Rand picks juries (a seeded generator from crypto/rand by default).
	Rand *rand.Rand

	// Private, when set, makes the room a private broadcast's: its own
	// topic, every message sealed (Sealing).
	Private *Sealing

	// Audience, on the broadcaster, returns how many nodes watch live: the
	// tree's size below the root (mesh Status().Subtree - 1). It is called
	// on the room's goroutine at most once every 250 ms; it must return
	// quickly and must not call the Room.
	Audience func() int
	// WebViewers, on the broadcaster, returns how many viewers watch in
	// browsers beyond the tree's nodes (the tree's "web" gauge,
	// Status().Counters[TreeWeb]: every node reports its own with
	// TreeLink.ReportBrowsers, and the tree sums them). They count as
	// anonymous viewers. Called like Audience.
	WebViewers func() int
	// Hearts, on the broadcaster, returns the hearts the tree counted so
	// far (the tree's "hearts" counter, Status().Counters[TreeHearts]):
	// every node's taps, summed up the tree, with the moments of those
	// whose tapper said what it watched (the moment counters). The
	// broadcaster's beats carry the total (with any hearts that came over
	// the topic), and every node floats its rise; the replay's heart log
	// places each rise at its moments. Called like Audience.
	Hearts func() HeartSums
	// Edge, on the broadcaster, returns the stream's live edge: 1 + the
	// sequence number of the newest chunk its tree cut (0: none yet). Its
	// beats carry it, so that a viewer hears the broadcast advance even
	// when its own parent keeps it from it. Called like Audience.
	Edge func() uint64
	// LiveEdge, on a viewer, is told the live edge of every beat that
	// says one: only the broadcaster's beats are delivered (the author is
	// the one pubsub's signature names). TreeLink hands it to the node's
	// tree (mesh Machine.LiveEdge), which bounds what it believes. It is
	// called on the room's goroutine and must not block or call the Room.
	LiveEdge func(seq uint64)
	// Tap is where this node's taps go: its tree (TreeLink counts them as
	// TreeHearts, and by their moment, with the Tree's Count), which
	// carries them up with its statuses; at is the capture wallclock of
	// the frame their tapper watched, zero when it did not say. It is
	// called on the room's goroutine and must not block or call the Room.
	// Without it, taps go over the topic, one message per heart interval.
	Tap func(n int, at time.Time)

	// Limits are the per-sender rate limits. Every peer must run the same:
	// they are part of the protocol (DefaultLimits).
	Limits Limits
	// BeatInterval is how often the broadcaster beats: audience, hearts,
	// pacing and the moderation digest (default 2 s).
	BeatInterval time.Duration
	// JurySize is how many viewers judge a report (default 5).
	JurySize int
	// JuryTimeout is how long a jury has to reach a majority (default 60 s).
	JuryTimeout time.Duration
	// MuteFor is how long a first conviction mutes (default 1 minute); a
	// second is for the rest of the broadcast.
	MuteFor time.Duration
	// MaxSkew is how far a message's send time may be from the receiver's
	// clock (default 2 minutes): older messages are ignored, so a captured
	// message cannot be replayed after pubsub forgot it.
	MaxSkew time.Duration
	// MaxLog bounds the comments kept for replay (default 50,000).
	MaxLog int
	// EventBuffer is the capacity of Events() (default 1024); events that
	// do not fit are dropped and counted.
	EventBuffer int
}

// Rate allows one message per Every, in bursts of up to Burst.
type Rate struct {
	Every time.Duration
	Burst int
}

// Limits are the rates one sender may reach, per kind of message, at every
// peer. A message over its sender's rate is ignored (not relayed, not
// delivered, and not held against the peer that relayed it).
type Limits struct {
	Comment  Rate
	Heart    Rate
	Presence Rate
	Report   Rate
	Vote     Rate
	Beat     Rate // the broadcaster's
	Request  Rate // a moderator's
}

// DefaultLimits returns the protocol's rates: a comment a second (bursts of
// 5), two heart messages a second (each carrying up to MaxHearts taps), a
// presence every 5 s, a report every 10 s.
func DefaultLimits() Limits {
	return Limits{
		Comment:  Rate{Every: time.Second, Burst: 5},
		Heart:    Rate{Every: 500 * time.Millisecond, Burst: 3},
		Presence: Rate{Every: 5 * time.Second, Burst: 3},
		Report:   Rate{Every: 10 * time.Second, Burst: 3},
		Vote:     Rate{Every: time.Second, Burst: 5},
		Beat:     Rate{Every: 250 * time.Millisecond, Burst: 8},
		Request:  Rate{Every: 200 * time.Millisecond, Burst: 20},
	}
}

func (l *Limits) rate(k kind) Rate {
	switch k {
	case kindComment:
		return l.Comment
	case kindHeart:
		return l.Heart
	case kindPresence:
		return l.Presence
	case kindReport:
		return l.Report
	case kindVote:
		return l.Vote
	case kindBeat:
		return l.Beat
	case kindRequest:
		return l.Request
	}
	return Rate{}
}

func (l *Limits) fill(d Limits) error {
	for _, p := range []struct{ r, d *Rate }{
		{&l.Comment, &d.Comment}, {&l.Heart, &d.Heart}, {&l.Presence, &d.Presence},
		{&l.Report, &d.Report}, {&l.Vote, &d.Vote}, {&l.Beat, &d.Beat}, {&l.Request, &d.Request},
	} {
		if *p.r == (Rate{}) {
			*p.r = *p.d
		}
		if p.r.Every <= 0 || p.r.Burst <= 0 {
			return fmt.Errorf("%w: rate %+v", ErrInvalidConfig, *p.r)
		}
	}
	return nil
}

// withDefaults fills in the defaults and checks the config.
func (c Config) withDefaults() (Config, error) {
	c.trust = c.Trust.With(c.Trusted...)
	if c.Broadcast == "" || len(c.Broadcast) > maxStringLen || !validText([]byte(c.Broadcast), false) {
		return c, fmt.Errorf("%w: broadcast ID %q", ErrInvalidConfig, c.Broadcast)
	}
	if c.Broadcaster == "" {
		return c, fmt.Errorf("%w: no broadcaster", ErrInvalidConfig)
	}
	if c.Private != nil {
		if err := c.Private.check(); err != nil {
			return c, err
		}
	}
	if _, err := c.Broadcaster.ExtractPublicKey(); err != nil {
		return c, fmt.Errorf("%w: broadcaster %s: no key in the ID: %w", ErrInvalidConfig, c.Broadcaster, err)
	}
	if c.Attestation != nil {
		if _, err := ParseAttestation(c.Attestation); err != nil {
			return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	c.Clock = clock.OrSystem(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewChaCha8(seed()))
	}
	if err := c.Limits.fill(DefaultLimits()); err != nil {
		return c, err
	}
	def := func(d *time.Duration, v time.Duration) error {
		if *d == 0 {
			*d = v
		}
		if *d < 0 {
			return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
		}
		return nil
	}
	for _, e := range []error{
		def(&c.BeatInterval, 2*time.Second), def(&c.JuryTimeout, time.Minute),
		def(&c.MuteFor, time.Minute), def(&c.MaxSkew, 2*time.Minute),
	} {
		if e != nil {
			return c, e
		}
	}
	if c.JurySize == 0 {
		c.JurySize = 5
	}
	if c.JurySize < 1 || c.JurySize > MaxJury {
		return c, fmt.Errorf("%w: jury of %d", ErrInvalidConfig, c.JurySize)
	}
	if c.MaxLog == 0 {
		c.MaxLog = 50_000
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = 1024
	}
	if c.MaxLog < 0 || c.EventBuffer < 0 {
		return c, fmt.Errorf("%w: negative size", ErrInvalidConfig)
	}
	return c, nil
}

// seed returns 32 bytes from crypto/rand for a ChaCha8 generator.
func seed() (s [32]byte) {
	_, _ = crand.Read(s[:])
	return s
}
