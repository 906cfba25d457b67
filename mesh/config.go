package mesh

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// Config is one node's configuration for one broadcast. Zero durations get
// the defaults of DefaultConfig; New rejects what cannot work.
type Config struct {
	Self      PeerInfo // this node
	Root      PeerInfo // the broadcaster
	Broadcast string   // broadcast ID carried by every chunk
	// Key is the broadcaster's public key; every chunk is verified against it.
	Key ed25519.PublicKey
	// Verify, if set, replaces the ed25519 check (the simulator caches
	// verdicts with it; nothing else should need it).
	Verify func(*chunk.Chunk) error

	// Slots is how many children this node adopts: its upload budget divided
	// by the stream's bitrate, with headroom (see SlotsFor). Zero for a
	// phone that must not relay.
	Slots int
	// Welcome is how many newcomers flagged AttachWelcome this node feeds
	// at once beyond its slots, each for WelcomeFor and then while it is
	// handed over to room below (at most welcomeMove more): paid from the
	// headroom the upload keeps (SlotsFor). Zero, the default: none. The
	// broadcaster never welcomes (its upload is its children's).
	Welcome int
	// WelcomeFor is how long a welcomed newcomer is fed here before its
	// handover begins.
	WelcomeFor time.Duration
	// Window is how many recent chunks a node keeps to backfill children and
	// answer pulls.
	Window int

	// ChunkInterval is the stream's chunk duration; timeouts scale from it.
	ChunkInterval time.Duration
	// HeartbeatInterval: a parent that sent a child nothing for this long
	// sends it a heartbeat.
	HeartbeatInterval time.Duration
	// ParentTimeout: a parent silent this long is taken for gone.
	ParentTimeout time.Duration
	// ChildTimeout: a child silent this long (no status) is dropped.
	ChildTimeout time.Duration
	// StatusInterval: how often, at most, a child reports a change (slots,
	// subtree, room below) to its parent.
	StatusInterval time.Duration
	// StatusKeepalive: how long a child whose report has not changed waits
	// before repeating it, so the parent knows it is alive. Must stay well
	// under ChildTimeout.
	StatusKeepalive time.Duration
	// ProbeTimeout: how long a joiner waits for pongs before choosing.
	ProbeTimeout time.Duration
	// AttachTimeout: how long a joiner waits for an answer to an attach.
	AttachTimeout time.Duration
	// GapTimeout: how long a hole in the sequence may stay before it is pulled.
	GapTimeout time.Duration
	// ImproveInterval: the mean time between two improvement attempts.
	// Negative disables improvement.
	ImproveInterval time.Duration
	// BanDuration: how long a peer that sent a forged chunk, or withheld
	// the stream as a parent, is ignored; also how long a member named as
	// a withholder is not redirected to.
	BanDuration time.Duration
	// ReceiptInterval: how often a node at depth 2 or more tells its
	// grandparent what it received through its parent (a receipt), from
	// which the grandparent learns which of its children really feed
	// theirs.
	ReceiptInterval time.Duration
	// WithholdTimeout: a parent that has sent no new sequence number for
	// this long while the node knows the broadcast has gone on is taken
	// for withholding the stream; also how long a move waits for its new
	// parent's first chunk before going back.
	WithholdTimeout time.Duration

	// Probes is how many candidates a joiner probes at once.
	Probes int
	// DepthCost is what one level of depth weighs against RTT when ranking
	// candidates: a parent one level shallower is worth this much more RTT.
	DepthCost time.Duration
	// EarlyMoveSlots: a relay with at least this many slots that attaches
	// three or more levels deep looks for a shallower place soon, not at
	// its next improvement (deep nodes, climbDepth, always do). 0: 4;
	// negative: never (only the deep ones).
	EarlyMoveSlots int

	// Counters are what the tree adds up besides its own shape, for the
	// application (see Counter); every node of a tree must have the same.
	Counters []Counter

	// Rand drives every random choice (jitter, sampling). Required for
	// determinism; New seeds one from Self.ID if nil.
	Rand *rand.Rand
}

// DefaultConfig returns the timing defaults for a stream cut in 200 ms chunks.
func DefaultConfig() Config {
	return Config{
		Window:            150,
		ChunkInterval:     200 * time.Millisecond,
		HeartbeatInterval: 250 * time.Millisecond,
		ParentTimeout:     800 * time.Millisecond,
		ChildTimeout:      2 * time.Second,
		StatusInterval:    250 * time.Millisecond,
		StatusKeepalive:   600 * time.Millisecond,
		ProbeTimeout:      400 * time.Millisecond,
		AttachTimeout:     time.Second,
		GapTimeout:        400 * time.Millisecond,
		ImproveInterval:   15 * time.Second,
		BanDuration:       2 * time.Minute,
		ReceiptInterval:   time.Second,
		WithholdTimeout:   time.Second,
		Probes:            6,
		DepthCost:         60 * time.Millisecond,
		WelcomeFor:        time.Second,
	}
}

// SlotsFor returns how many children an upload budget carries at a bitrate,
// keeping headroom (e.g. 1.5: use two thirds of the upload) so that a chunk
// reaches the last child well within one chunk interval.
func SlotsFor(uploadBps, bitrateBps int64, headroom float64) int {
	if uploadBps <= 0 || bitrateBps <= 0 {
		return 0
	}
	if headroom < 1 {
		headroom = 1
	}
	return int(float64(uploadBps) / (float64(bitrateBps) * headroom))
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	set(&c.ChunkInterval, d.ChunkInterval)
	set(&c.HeartbeatInterval, d.HeartbeatInterval)
	set(&c.ParentTimeout, d.ParentTimeout)
	set(&c.ChildTimeout, d.ChildTimeout)
	set(&c.StatusInterval, d.StatusInterval)
	set(&c.StatusKeepalive, d.StatusKeepalive)
	set(&c.ProbeTimeout, d.ProbeTimeout)
	set(&c.AttachTimeout, d.AttachTimeout)
	set(&c.GapTimeout, d.GapTimeout)
	set(&c.ImproveInterval, d.ImproveInterval)
	set(&c.BanDuration, d.BanDuration)
	set(&c.ReceiptInterval, d.ReceiptInterval)
	set(&c.WithholdTimeout, d.WithholdTimeout)
	set(&c.DepthCost, d.DepthCost)
	set(&c.WelcomeFor, d.WelcomeFor)
	if c.Probes == 0 {
		c.Probes = d.Probes
	}
	if c.EarlyMoveSlots == 0 {
		c.EarlyMoveSlots = defaultEarlyMoveSlots
	}
	if c.Rand == nil {
		var seed uint64
		for _, b := range []byte(c.Self.ID) {
			seed = seed*131 + uint64(b)
		}
		c.Rand = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	}
}

func (c *Config) validate() error {
	switch {
	case c.Self.ID == "":
		return fmt.Errorf("%w: Self.ID is empty", ErrInvalidConfig)
	case c.Root.ID == "":
		return fmt.Errorf("%w: Root.ID is empty", ErrInvalidConfig)
	case c.Broadcast == "":
		return fmt.Errorf("%w: Broadcast is empty", ErrInvalidConfig)
	case c.Verify == nil && len(c.Key) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: Key must be an ed25519 public key", ErrInvalidConfig)
	case c.Slots < 0 || c.Welcome < 0:
		return fmt.Errorf("%w: Slots or Welcome is negative", ErrInvalidConfig)
	case c.Window < 8:
		return fmt.Errorf("%w: Window %d is under 8 chunks", ErrInvalidConfig, c.Window)
	case c.Probes < 1:
		return fmt.Errorf("%w: Probes must be at least 1", ErrInvalidConfig)
	case c.ParentTimeout <= c.HeartbeatInterval:
		return fmt.Errorf("%w: ParentTimeout must exceed HeartbeatInterval", ErrInvalidConfig)
	case c.StatusKeepalive < c.StatusInterval:
		return fmt.Errorf("%w: StatusKeepalive is under StatusInterval", ErrInvalidConfig)
	case c.ChildTimeout <= c.StatusKeepalive:
		return fmt.Errorf("%w: ChildTimeout must exceed StatusKeepalive", ErrInvalidConfig)
	case c.WithholdTimeout >= c.ChildTimeout:
		// A move waits this long for its new parent with the old one still
		// holding its slot, which it keeps only until ChildTimeout.
		return fmt.Errorf("%w: WithholdTimeout must be under ChildTimeout", ErrInvalidConfig)
	case c.ReceiptInterval < 0 || c.WithholdTimeout < 0:
		return fmt.Errorf("%w: ReceiptInterval and WithholdTimeout must be positive", ErrInvalidConfig)
	}
	return validateCounters(c.Counters)
}
