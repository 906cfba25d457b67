package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
)

// ErrInvalidConfig is returned by New for a configuration it cannot run.
var ErrInvalidConfig = errors.New("sim: invalid config")

// Class is one kind of viewer uplink.
type Class struct {
	Name string
	// Share is the fraction of viewers of this class (the shares are
	// normalised).
	Share float64
	// MinUpload and MaxUpload bound the upload in bit/s, drawn uniformly.
	MinUpload, MaxUpload int64
	// Relay false gives the class no child slots whatever its upload (a
	// metered phone).
	Relay bool
}

// DefaultClasses is the heterogeneous mix of viewer uplinks: half phones
// that never relay, a third home links, a few well-connected machines.
func DefaultClasses() []Class {
	return []Class{
		{Name: "phone", Share: 0.50, MinUpload: 500_000, MaxUpload: 1_500_000, Relay: false},
		{Name: "home", Share: 0.35, MinUpload: 5_000_000, MaxUpload: 20_000_000, Relay: true},
		{Name: "wired", Share: 0.15, MinUpload: 50_000_000, MaxUpload: 100_000_000, Relay: true},
	}
}

// Uplink is how a node's uplink orders the messages it sends.
type Uplink uint8

const (
	// UplinkFIFO sends every message in the order the node produced it,
	// whoever it is for: a big backfill to one peer holds back the live
	// chunks of all the others.
	UplinkFIFO Uplink = iota
	// UplinkFair keeps a queue per destination and serves them in rounds,
	// one message from each: what parallel streams sharing a link
	// (libp2p's one stream per peer) come to, at message granularity.
	// DefaultConfig's: a node's children are separate connections, which
	// the network shares between them, not one queue.
	UplinkFair
)

func (u Uplink) String() string {
	if u == UplinkFair {
		return "fair"
	}
	return "fifo"
}

// Config is one simulation. Start from DefaultConfig: New gives zero
// durations and counts their defaults, but Churn, Loss, ResetProb,
// GracefulLeave, Forgers, Sybils, Padders, KillFraction and BeatInterval
// are taken as they are (zero means none).
type Config struct {
	Nodes    int           // viewers (the broadcaster comes on top)
	Duration time.Duration // simulated time
	Seed     uint64

	// The stream.
	Bitrate          int64         // payload bit/s
	ChunkInterval    time.Duration // one chunk per interval
	KeyframeInterval time.Duration // a keyframe chunk this often
	Playout          time.Duration // a chunk must be held by Wallclock+Playout

	// Capacity.
	Classes     []Class
	Headroom    float64 // slots = SlotsFor(upload, bitrate, Headroom)
	MaxSlots    int     // cap on a viewer's slots
	SourceSlots int     // the broadcaster's slots; its upload is sized for them

	// The network.
	Uplink     Uplink        // how an uplink orders messages to different peers
	Loss       float64       // per-packet loss probability
	PacketSize int           // bytes per packet, for loss
	MinOneWay  time.Duration // one-way delay at distance zero
	PlaneSize  time.Duration // side of the plane, in one-way delay
	Regions    int           // clusters of nodes
	Spread     time.Duration // standard deviation of a node's distance from its region centre, per axis
	Scattered  float64       // fraction of nodes placed anywhere, not near a region
	// Forward is how relays pass chunks on (cut.go): whole (ForwardStore,
	// the default) or fragment by fragment as they arrive (ForwardCut),
	// in fragments of Fragment bytes (0: DefaultFragment).
	Forward  Forward
	Fragment int

	// Stripes, when 2 or more, splits the stream SplitStream-wise
	// (stripes.go): each chunk is cut into Stripes fragments and Parity
	// parity fragments, each carried by a tree of its own, and a viewer
	// plays a chunk once any Stripes of its fragments are in. A
	// relaying viewer is interior in one tree only (a leaf in the others),
	// with its whole upload there; the broadcaster's upload is shared
	// among the trees. 0 or 1: one tree carrying whole chunks.
	Stripes int
	// Parity, under Stripes, is how many parity fragments (and trees) a
	// chunk has on top of its Stripes (0: one): any Stripes of the
	// Stripes+Parity play (one parity fragment is the XOR of the others;
	// more, a Reed-Solomon code).
	Parity int
	stripe int // which tree this Sim carries, under Stripes

	// Arrivals and departures.
	ArrivalWindow time.Duration // the Nodes viewers arrive over this
	Candidates    int           // attached viewers handed to an arriving one, besides the root
	Churn         float64       // departures per minute as a fraction of present viewers (and as many arrivals)
	ResetProb     float64       // probability that a departure resets its connections (neighbours get PeerDown)
	GracefulLeave float64       // fraction of departures that call Leave first
	Forgers       int           // relaying viewers among the first arrivals that forge every chunk they send

	// Adversaries (adversary.go). Sybils come on top of Nodes and stay the
	// whole run: they claim all the capacity there is, lie in pongs,
	// accept children and send them heartbeats but never a chunk. Padders
	// are relaying viewers among the first arrivals that append PadBytes of
	// an unknown field to every chunk frame they send.
	Sybils   int
	Padders  int
	PadBytes int
	// KillAt, with KillFraction, kills that fraction of the viewers
	// present at that moment at once, abruptly (no Leave; ResetProb of
	// them reset their connections, as any departure).
	KillAt       time.Duration
	KillFraction float64
	// BeatInterval is how often every viewer hears the broadcaster's chat
	// beat, which gives the live edge (mesh.Machine.LiveEdge) as of BeatLag
	// ago; 0: no beat.
	BeatInterval time.Duration
	BeatLag      time.Duration

	// Driving the nodes.
	TickInterval time.Duration // each node's Tick period
	// Mesh is the template of every node's mesh.Config: its timing and
	// tuning fields are used as they are (zero: mesh's defaults); Self,
	// Root, Broadcast, Key, Verify, Slots and Rand are set by the simulator.
	Mesh mesh.Config

	// Measuring.
	SampleInterval    time.Duration // how often the tree is sampled (depth, orphans)
	Warmup            time.Duration // after ArrivalWindow, before depth counts as settled (extra max_depth_settled)
	MinUploadPresence time.Duration // viewers present this long count for max_upload_ratio

	// Progress, if set, is called by Run every 10 s of simulated time.
	Progress func(simulated time.Duration)

	// Trace, if set, is told every tree event of viewer TraceNode and of
	// its parent and grandparent at that moment, and every chunk one of
	// them delivered more than a third of Playout late (the report's
	// stall_worst_node names the viewer worth tracing: the run is
	// deterministic for a seed).
	Trace     func(line string)
	TraceNode int32
}

// DefaultConfig returns a 1,000-viewer, one-minute run of a 2.5 Mb/s
// stream in 200 ms chunks, with 1% packet loss and no churn.
func DefaultConfig() Config {
	return Config{
		Nodes:             1000,
		Duration:          time.Minute,
		Seed:              1,
		Bitrate:           2_500_000,
		ChunkInterval:     200 * time.Millisecond,
		KeyframeInterval:  2 * time.Second,
		Playout:           2 * time.Second,
		Classes:           DefaultClasses(),
		Headroom:          1.5,
		MaxSlots:          16,
		SourceSlots:       3,
		Loss:              0.01,
		PacketSize:        1200,
		MinOneWay:         2 * time.Millisecond,
		PlaneSize:         104 * time.Millisecond,
		Regions:           6,
		Spread:            6 * time.Millisecond,
		Scattered:         0.1,
		ArrivalWindow:     20 * time.Second,
		Candidates:        8,
		ResetProb:         0.5,
		TickInterval:      50 * time.Millisecond,
		Uplink:            UplinkFair,
		SampleInterval:    time.Second,
		Warmup:            time.Minute,
		MinUploadPresence: 30 * time.Second,
		PadBytes:          256 << 10,
		BeatInterval:      2 * time.Second,
		BeatLag:           500 * time.Millisecond,
	}
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setD(&c.Duration, d.Duration)
	setD(&c.ChunkInterval, d.ChunkInterval)
	setD(&c.KeyframeInterval, d.KeyframeInterval)
	setD(&c.Playout, d.Playout)
	setD(&c.MinOneWay, d.MinOneWay)
	setD(&c.PlaneSize, d.PlaneSize)
	setD(&c.Spread, d.Spread)
	setD(&c.ArrivalWindow, d.ArrivalWindow)
	setD(&c.TickInterval, d.TickInterval)
	setD(&c.SampleInterval, d.SampleInterval)
	setD(&c.Warmup, d.Warmup)
	setD(&c.MinUploadPresence, d.MinUploadPresence)
	if c.Bitrate == 0 {
		c.Bitrate = d.Bitrate
	}
	if c.Classes == nil {
		c.Classes = d.Classes
	}
	if c.Headroom == 0 {
		c.Headroom = d.Headroom
	}
	if c.MaxSlots == 0 {
		c.MaxSlots = d.MaxSlots
	}
	if c.SourceSlots == 0 {
		c.SourceSlots = d.SourceSlots
	}
	if c.PacketSize == 0 {
		c.PacketSize = d.PacketSize
	}
	if c.Regions == 0 {
		c.Regions = d.Regions
	}
	if c.Candidates == 0 {
		c.Candidates = d.Candidates
	}
	if c.PadBytes == 0 {
		c.PadBytes = d.PadBytes
	}
	if c.Fragment == 0 {
		c.Fragment = DefaultFragment
	}
	if c.Stripes > 1 && c.Parity == 0 {
		c.Parity = 1
	}
	if c.Mesh.ChunkInterval == 0 {
		c.Mesh.ChunkInterval = c.ChunkInterval
	}
}

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	switch {
	case c.Nodes < 1:
		return bad("Nodes %d: need at least one viewer", c.Nodes)
	case c.Duration < 0 || c.ChunkInterval < time.Millisecond || c.Playout < 0:
		return bad("Duration, ChunkInterval (≥ 1ms) and Playout must be positive")
	case c.Playout/c.ChunkInterval >= winBits-8:
		return bad("Playout %v is over %d chunks", c.Playout, winBits-8)
	case c.Bitrate < 8:
		return bad("Bitrate %d bit/s is too low", c.Bitrate)
	case c.Bitrate/8*int64(c.ChunkInterval)/int64(time.Second) > chunk.MaxPayloadSize:
		return bad("a chunk of %v at %d bit/s exceeds mesh.MaxPayloadSize", c.ChunkInterval, c.Bitrate)
	case c.Loss < 0 || c.Loss >= 1:
		return bad("Loss %v must be in [0, 1)", c.Loss)
	case c.Churn < 0:
		return bad("Churn %v is negative", c.Churn)
	case c.ResetProb < 0 || c.ResetProb > 1 || c.GracefulLeave < 0 || c.GracefulLeave > 1:
		return bad("ResetProb and GracefulLeave must be in [0, 1]")
	case c.Headroom < 1:
		return bad("Headroom %v is under 1", c.Headroom)
	case c.SourceSlots < 1:
		return bad("SourceSlots %d: the broadcaster needs a slot", c.SourceSlots)
	case c.Scattered < 0 || c.Scattered > 1:
		return bad("Scattered %v must be in [0, 1]", c.Scattered)
	case c.TickInterval < time.Millisecond:
		return bad("TickInterval %v is under 1ms", c.TickInterval)
	case c.Forgers < 0 || c.Forgers > c.Nodes:
		return bad("Forgers %d out of range", c.Forgers)
	case c.Padders < 0 || c.Forgers+c.Padders > c.Nodes || c.Sybils < 0:
		return bad("Padders %d or Sybils %d out of range", c.Padders, c.Sybils)
	case c.PadBytes < 0 || int64(c.PadBytes) > chunk.MaxSize-c.Bitrate/8*int64(c.ChunkInterval)/int64(time.Second)-1024:
		return bad("PadBytes %d: a padded chunk must stay under chunk.MaxSize", c.PadBytes)
	case c.KillFraction < 0 || c.KillFraction > 1 || c.KillAt < 0:
		return bad("KillFraction %v must be in [0, 1], KillAt positive", c.KillFraction)
	case c.BeatInterval < 0 || c.BeatLag < 0:
		return bad("BeatInterval and BeatLag must be positive")
	case c.Fragment < 1024 || c.Forward > ForwardCut:
		return bad("Fragment %d: need at least 1024 bytes (and Forward store or cut)", c.Fragment)
	case len(c.Classes) == 0:
		return bad("no viewer classes")
	case c.Stripes < 0 || c.Stripes > maxStripes || (c.Stripes > 1 && (c.Parity < 0 || c.Parity > c.Stripes)):
		return bad("Stripes %d, Parity %d: at most %d stripes, and no more parity than stripes", c.Stripes, c.Parity, maxStripes)
	case c.Stripes > 1 && (c.Sybils > 0 || c.Padders > 0 || c.Forgers > 0 || c.Forward == ForwardCut):
		return bad("Stripes: not with sybils, padders, forgers or cut-through forwarding (yet)")
	}
	total := 0.0
	for _, k := range c.Classes {
		if k.Share < 0 || k.MinUpload <= 0 || k.MaxUpload < k.MinUpload {
			return bad("class %q: need Share ≥ 0 and 0 < MinUpload ≤ MaxUpload", k.Name)
		}
		total += k.Share
	}
	if total <= 0 {
		return bad("class shares sum to zero")
	}
	return nil
}
