package bench

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// Modes lists the modes Run knows.
var Modes = []string{"tree", "gossipsub", "star"}

// ErrInvalidConfig is returned by Run for a configuration it cannot run.
var ErrInvalidConfig = errors.New("bench: invalid config")

// SlotShare is one part of the viewers' slot mix: Share of them offer Slots.
type SlotShare struct {
	Slots int
	Share float64
}

// ParseSlotMix parses "0:0.3,3:0.5,8:0.2" (slots:share, shares normalised).
func ParseSlotMix(s string) ([]SlotShare, error) {
	var mix []SlotShare
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("%w: slot mix %q: want slots:share", ErrInvalidConfig, part)
		}
		slots, err1 := strconv.Atoi(k)
		share, err2 := strconv.ParseFloat(v, 64)
		if err1 != nil || err2 != nil || slots < 0 || share < 0 {
			return nil, fmt.Errorf("%w: slot mix %q", ErrInvalidConfig, part)
		}
		mix = append(mix, SlotShare{slots, share})
	}
	return mix, nil
}

// Config is one run of one mode.
type Config struct {
	Mode             string
	Nodes            int // hosts, the broadcaster included
	Duration         time.Duration
	Bitrate          int64 // payload bit/s
	ChunkInterval    time.Duration
	KeyframeInterval time.Duration
	Playout          time.Duration
	ArrivalWindow    time.Duration // 0: a third of Duration, at most 20 s
	Churn            float64       // kills per minute as a fraction of present viewers
	Seed             uint64
	SlotMix          []SlotShare
	SourceSlots      int
	Candidates       int // attached viewers handed to a new viewer (tree)
	GossipPeers      int // peers a viewer connects to (gossipsub)
	Logger           *slog.Logger
	Progress         func(format string, args ...any) // nil: quiet
	// SlowLog, if set, gets a line for every (viewer, chunk) cut after the
	// viewer's join that arrived later than SlowThreshold: for diagnosis.
	SlowLog       io.Writer
	SlowThreshold time.Duration
	// Adversaries and mass failure (tree mode; adversary.go). Sybils and
	// Padders are among the Nodes-1 viewers, spread over the arrivals:
	// sybils claim all the capacity there is, lie in pongs, accept children
	// and send them heartbeats but never a chunk; padders append PadBytes
	// of an unknown field to every chunk frame they send. Neither counts as
	// a viewer in the report, nor is killed by churn. KillFraction of the
	// honest viewers present at KillAt are killed at once (hosts closed, no
	// goodbye).
	Sybils, Padders int
	PadBytes        int
	// Stripes, if not 0, carries the stream over Stripes+Parity trees
	// (tree mode; package mesh/stripe): each chunk cut into Stripes
	// fragments and Parity more, a viewer relaying in one tree only and
	// holding a chunk once any Stripes of its fragments are in.
	Stripes, Parity int
	KillAt          time.Duration
	KillFraction    float64
	// Sample, if set, is how often the process's RSS and goroutines are
	// sampled (a soak): the report gives them at the start (the arrivals
	// done), the middle and the end.
	Sample time.Duration

	// Chat joins every host to the broadcast's chat (tree mode) and, after
	// the arrivals, measures comment latency, the broadcaster's inbound
	// bytes under hearts and how fast its live count settles after 10 % of
	// the viewers leave (ChatTail); see chat.go.
	Chat bool
	// Private makes the broadcast private (private.go): sealed chunks, a
	// new epoch every RekeyEvery (default 5 min) wrapped for every
	// viewer, every chunk opened before it counts as held.
	Private    bool
	RekeyEvery time.Duration
	// PrivateFresh opens every chunk into fresh memory, as a node's members
	// did until 5d62116 (for LL-HLS's window and WHEP's GOP). Without it a
	// viewer opens into memory it reuses, as a node's players now do: an
	// LL-HLS request into the server's spare buffers, a WHEP session into
	// its own.
	PrivateFresh bool
}

// DefaultConfig is 100 hosts, 60 s of a 2.5 Mb/s stream in 200 ms chunks.
func DefaultConfig() Config {
	return Config{
		Mode:             "tree",
		Nodes:            100,
		Duration:         time.Minute,
		Bitrate:          2_500_000,
		ChunkInterval:    200 * time.Millisecond,
		KeyframeInterval: 2 * time.Second,
		Playout:          2 * time.Second,
		Seed:             1,
		SlotMix:          []SlotShare{{0, 0.3}, {3, 0.5}, {8, 0.2}},
		SourceSlots:      3,
		Candidates:       8,
		GossipPeers:      4,
		PadBytes:         256 << 10,
	}
}

func (c *Config) validate() error {
	if c.ArrivalWindow == 0 {
		c.ArrivalWindow = min(c.Duration/3, 20*time.Second)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.KillFraction > 0 && c.KillAt == 0 {
		c.KillAt = c.Duration / 2
	}
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("%w: need at least 2 nodes", ErrInvalidConfig)
	case c.Duration <= 0 || c.ChunkInterval < time.Millisecond || c.Playout < 0 || c.ArrivalWindow < 0:
		return fmt.Errorf("%w: durations", ErrInvalidConfig)
	case c.Bitrate <= 0:
		return fmt.Errorf("%w: bitrate", ErrInvalidConfig)
	case c.Bitrate*int64(c.ChunkInterval)/8/int64(time.Second) > chunk.MaxPayloadSize:
		return fmt.Errorf("%w: a chunk would exceed %d bytes", ErrInvalidConfig, chunk.MaxPayloadSize)
	case c.Churn < 0:
		return fmt.Errorf("%w: churn", ErrInvalidConfig)
	case len(c.SlotMix) == 0:
		return fmt.Errorf("%w: empty slot mix", ErrInvalidConfig)
	case c.Chat && c.Mode != "tree":
		return fmt.Errorf("%w: chat is measured in tree mode only", ErrInvalidConfig)
	case c.Sybils < 0 || c.Padders < 0 || c.Sybils+c.Padders >= c.Nodes-1:
		return fmt.Errorf("%w: sybils and padders must leave honest viewers", ErrInvalidConfig)
	case (c.Sybils > 0 || c.Padders > 0 || c.KillFraction > 0) && c.Mode != "tree":
		return fmt.Errorf("%w: adversaries and kills are for tree mode", ErrInvalidConfig)
	case c.KillFraction < 0 || c.KillFraction > 1 || c.KillAt < 0 || c.KillAt > c.Duration:
		return fmt.Errorf("%w: kill fraction in [0, 1], kill time within the run", ErrInvalidConfig)
	case c.Stripes != 0 && (c.Mode != "tree" || c.Chat || c.Sybils > 0 || c.Padders > 0 || c.Private):
		return fmt.Errorf("%w: stripes are for tree mode, without chat, sybils, padders or a private broadcast (for now)", ErrInvalidConfig)
	case c.Stripes < 0 || c.Parity < 0 || (c.Stripes > 0 && c.Stripes+c.Parity > chunk.MaxFragments):
		return fmt.Errorf("%w: %d stripes and %d parity (at most %d in all)", ErrInvalidConfig, c.Stripes, c.Parity, chunk.MaxFragments)
	case c.PadBytes < 0 || c.PadBytes > chunk.MaxSize/2:
		return fmt.Errorf("%w: pad bytes", ErrInvalidConfig)
	case c.Chat && c.Duration-c.ArrivalWindow < ChatTail:
		return fmt.Errorf("%w: chat needs %v after the arrivals (--duration at least --arrive + %v)", ErrInvalidConfig, ChatTail, ChatTail)
	}
	return nil
}

// NewHost starts a libp2p host on loopback TCP with what a benchmark of
// many hosts in one process needs: no resource limits (each host would size
// its limits as if it had the machine alone), no relay, no Prometheus.
func NewHost() (host.Host, error) {
	return libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
}

// viewer is one node's record, the broadcaster's included.
type viewer struct {
	idx   int
	h     host.Host
	slots int
	start time.Time
	role  role // honest, sybil or padder: fixed at the start

	chunkSent atomic.Uint64
	ctrlSent  atomic.Uint64
	recvBytes atomic.Uint64 // chunk bytes received, every copy
	dupBytes  atomic.Uint64

	mu       sync.Mutex
	dead     bool
	end      time.Time
	recvAt   []int64 // by seq: receipt, Unix ns; 0 = not held
	seen     []bool  // by seq (by seq × trees + tree when striped): a copy arrived (duplicates)
	first    time.Time
	firstSeq uint64
	// By tree: one, or Config.Stripes+Parity.
	parent   []mesh.PeerID
	attached []bool
	goneAt   []time.Time // its parent there was killed then; zero: not waiting
	depth    int
	// withheldAt: attached under a sybil then (withholding starts);
	// zero: not under one.
	withheldAt time.Time
}

// run is one mode's run in progress.
type run struct {
	cfg    Config
	rng    *rand.Rand
	signer *chunk.Signer
	key    ed25519.PublicKey
	bid    string   // the broadcast ID: "bench", or a private one's
	priv   *privacy // Config.Private
	t0     time.Time
	size   int // payload bytes of a media chunk
	root   *viewer

	mu        sync.Mutex
	viewers   []*viewer // every viewer ever started
	present   []*viewer
	wallclock []int64 // by seq
	frame     []int   // by seq: the chunk message's frame as published, in bytes
	published int     // chunks published, the init chunk included
	streamB   uint64  // chunk bytes of the stream
	rejoin    report.Sample
	maxDepth  int
	kills     int
	cleanup   sync.WaitGroup

	adv     adversaries
	soak    soakSamples
	killed  int           // by the mass kill
	rejoinW report.Sample // withheld rejoin: under a sybil → under an honest parent
}

// swarm is what a mode does with the hosts.
type swarm interface {
	startRoot(ctx context.Context, root *viewer) error
	startViewer(ctx context.Context, v *viewer) error
	publish(ctx context.Context, c *chunk.Chunk) error
	// kill stops v abruptly: its host closes first, then the rest.
	kill(v *viewer)
	close()
	extra(r *report.Report)
}

// Run runs one mode and reports.
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	r.size = int(cfg.Bitrate * int64(cfg.ChunkInterval) / 8 / int64(time.Second))
	var sw swarm
	switch cfg.Mode {
	case "tree":
		sw = &treeSwarm{r: r}
	case "gossipsub":
		sw = &gossipSwarm{r: r}
	case "star":
		sw = &starSwarm{r: r}
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", ErrInvalidConfig, cfg.Mode)
	}
	start := time.Now()
	rep, err := r.run(ctx, sw)
	if err != nil {
		return nil, err
	}
	rep.WallS = math.Round(time.Since(start).Seconds()*100) / 100
	return rep, nil
}

func (r *run) chunks() int {
	return int(r.cfg.Duration/r.cfg.ChunkInterval) + 2
}

// trees is how many trees carry the stream.
func (r *run) trees() int {
	if r.cfg.Stripes > 0 {
		return r.cfg.Stripes + r.cfg.Parity
	}
	return 1
}

func (r *run) newViewer(idx, slots int) (*viewer, error) {
	h, err := NewHost()
	if err != nil {
		return nil, err
	}
	n, t := r.chunks(), r.trees()
	return &viewer{idx: idx, h: h, slots: slots, start: time.Now(), recvAt: make([]int64, n), seen: make([]bool, n*t),
		parent: make([]mesh.PeerID, t), attached: make([]bool, t), goneAt: make([]time.Time, t), depth: -1}, nil
}

func (r *run) drawSlots() int {
	total := 0.0
	for _, s := range r.cfg.SlotMix {
		total += s.Share
	}
	x := r.rng.Float64() * total
	for _, s := range r.cfg.SlotMix {
		if x < s.Share {
			return s.Slots
		}
		x -= s.Share
	}
	return r.cfg.SlotMix[len(r.cfg.SlotMix)-1].Slots
}

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(format, args...)
	}
}

// run runs one benchmark: the broadcaster, the viewers arriving, churn
// until the end, and the report.
func (r *run) run(ctx context.Context, sw swarm) (*report.Report, error) {
	cfg := r.cfg
	root, err := r.newViewer(0, cfg.SourceSlots)
	if err != nil {
		return nil, err
	}
	r.root = root
	r.signer, err = p2p.HostSigner(root.h)
	if err != nil {
		return nil, err
	}
	r.key = r.signer.PublicKey()
	if r.bid = "bench"; cfg.Private {
		if r.priv, err = newPrivacy(root, cmp.Or(cfg.RekeyEvery, 5*time.Minute), !cfg.PrivateFresh); err != nil {
			return nil, err
		}
		r.bid = r.priv.id
	}
	defer func() {
		sw.close()
		r.cleanup.Wait()
		r.mu.Lock()
		hosts := make([]io.Closer, 0, len(r.present)+1)
		for _, v := range r.present {
			hosts = append(hosts, v.h)
		}
		r.mu.Unlock()
		r.closeAll(append(hosts, root.h))
	}()
	if err := sw.startRoot(ctx, root); err != nil {
		return nil, err
	}
	r.wallclock = make([]int64, r.chunks())
	r.frame = make([]int, r.chunks())
	sched := takeSched()
	r.t0 = time.Now()
	end := r.t0.Add(cfg.Duration)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); r.publishLoop(ctx, sw, end) }()
	go func() {
		defer wg.Done()
		if r.priv != nil {
			r.priv.loop(ctx, r.progress)
		}
	}()
	go func() { defer wg.Done(); r.sampleLoop(ctx) }()
	go func() { defer wg.Done(); r.massKill(ctx, sw) }()
	stop := func() { cancel(); wg.Wait() }

	viewers := cfg.Nodes - 1
	if err := r.arrivals(ctx, sw, viewers); err != nil {
		stop()
		return nil, err
	}
	r.progress("%s: %d viewers started in %.1fs", cfg.Mode, viewers, time.Since(r.t0).Seconds())
	chatDone := make(chan struct{})
	if ch, ok := sw.(interface{ measureChat(context.Context) }); ok && cfg.Chat {
		go func() { defer close(chatDone); ch.measureChat(ctx) }()
	} else {
		close(chatDone)
	}
	cpu0 := cpuTime()
	r.mu.Lock()
	pub0 := r.published
	r.mu.Unlock()

	if err := r.churn(ctx, sw, end, viewers+1); err != nil {
		stop()
		return nil, err
	}
	sleepUntil(ctx, end)
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil && time.Now().Before(end) {
		stop()
		return nil, err
	}
	stop()
	<-chatDone
	return r.finish(sw, end, sched, cpu0, pub0), nil
}

// arrivals starts the viewers, evenly over the arrival window.
func (r *run) arrivals(ctx context.Context, sw swarm, viewers int) error {
	for i := 1; i <= viewers; i++ {
		at := r.t0.Add(r.cfg.ArrivalWindow * time.Duration(i-1) / time.Duration(max(viewers-1, 1)))
		if !sleepUntil(ctx, at) {
			break
		}
		if err := r.startViewer(ctx, sw, i); err != nil {
			return err
		}
	}
	return nil
}

// churn kills a random viewer and starts a new one (numbered from next) at
// the Churn rate until end, reporting progress every 10 s.
func (r *run) churn(ctx context.Context, sw swarm, end time.Time, next int) error {
	cfg := r.cfg
	lastProgress := time.Now()
	for ctx.Err() == nil {
		wait := end.Sub(time.Now())
		if cfg.Churn > 0 {
			r.mu.Lock()
			rate := cfg.Churn * float64(len(r.present)) / 60 // kills per second
			r.mu.Unlock()
			if rate > 0 {
				wait = min(wait, time.Duration(r.rng.ExpFloat64()/rate*float64(time.Second)))
			}
		}
		if !sleepUntil(ctx, time.Now().Add(wait)) || !time.Now().Before(end) {
			break
		}
		if cfg.Churn > 0 {
			r.killOne(sw)
			if err := r.startViewer(ctx, sw, next); err != nil {
				return err
			}
			next++
		}
		if time.Since(lastProgress) > 10*time.Second {
			lastProgress = time.Now()
			r.mu.Lock()
			r.progress("%s: %.0fs, %d chunks, %d viewers, %d killed", cfg.Mode, time.Since(r.t0).Seconds(), r.published, len(r.present), r.kills)
			r.mu.Unlock()
		}
	}
	return nil
}

// finish makes the report: the run's figures, the chat's, and the CPU and
// scheduling costs since the arrivals.
func (r *run) finish(sw swarm, end time.Time, sched schedSnapshot, cpu0 time.Duration, pub0 int) *report.Report {
	cpu1 := cpuTime()
	if r.cfg.Sample > 0 {
		r.takeSample() // the end, before anything closes
	}
	rep := r.report(end)
	if ch, ok := sw.(interface{ chatReport(*report.Report) }); ok && r.cfg.Chat {
		ch.chatReport(rep)
	}
	// CPU per chunk per viewer after the arrivals: what relaying one chunk
	// costs a node here (transport, crypto, the shell), all modes alike.
	if n := rep.Extra["chunks_published"] - float64(pub0); n > 0 && cpu1 > cpu0 {
		rep.Extra["cpu_us_per_chunk_viewer"] = round4(float64(cpu1-cpu0) / float64(time.Microsecond) / n / float64(r.cfg.Nodes-1))
	}
	after := takeSched()
	rep.Extra["sched_latency_p99_ms"], rep.Extra["sched_latency_max_ms"] = quantileSince(sched.latency, after.latency, 0.99)
	_, rep.Extra["gc_pause_max_ms"] = quantileSince(sched.pauses, after.pauses, 1)
	sw.extra(rep)
	if r.priv != nil {
		r.priv.extra(rep)
	}
	return rep
}

// sleepUntil waits on the system clock until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	return clock.SleepUntil(ctx, clock.System{}, t)
}

func (r *run) startViewer(ctx context.Context, sw swarm, idx int) error {
	slots := r.drawSlots()
	role := r.roleOf(idx, r.cfg.Nodes-1)
	switch role {
	case sybil:
		slots = sybilSlots
	case padder:
		slots = max(slots, 3) // a padder relays: its children get its frames
	}
	v, err := r.newViewer(idx, slots)
	if err != nil {
		return err
	}
	if r.priv != nil {
		if err := r.priv.join(v); err != nil {
			return err
		}
	}
	v.role = role
	r.mu.Lock()
	if role == sybil {
		if r.adv.sybils == nil {
			r.adv.sybils = map[mesh.PeerID]bool{}
		}
		r.adv.sybils[p2p.MeshID(v.h.ID())] = true
	}
	r.viewers = append(r.viewers, v)
	r.present = append(r.present, v)
	r.mu.Unlock()
	return sw.startViewer(ctx, v)
}

// candidates returns up to n random attached present viewers.
func (r *run) candidates(n int, except *viewer) []*viewer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*viewer
	for _, i := range r.rng.Perm(len(r.present)) {
		v := r.present[i]
		if v == except {
			continue
		}
		v.mu.Lock()
		ok := slices.Contains(v.attached, true)
		v.mu.Unlock()
		if ok {
			out = append(out, v)
			if len(out) >= n {
				break
			}
		}
	}
	return out
}

func (r *run) killOne(sw swarm) {
	r.mu.Lock()
	if len(r.present) == 0 {
		r.mu.Unlock()
		return
	}
	var honestAt []int // adversaries stay: churn and kills take honest viewers
	for k, v := range r.present {
		if v.role == honest {
			honestAt = append(honestAt, k)
		}
	}
	if len(honestAt) == 0 {
		r.mu.Unlock()
		return
	}
	i := honestAt[r.rng.IntN(len(honestAt))]
	v := r.present[i]
	r.present = append(r.present[:i], r.present[i+1:]...)
	r.kills++
	type orphan struct {
		v    *viewer
		tree int
	}
	orphans := make([]orphan, 0, 8)
	id := p2p.MeshID(v.h.ID())
	for _, o := range r.present {
		o.mu.Lock()
		for k, p := range o.parent {
			if p == id && o.attached[k] {
				orphans = append(orphans, orphan{o, k})
			}
		}
		o.mu.Unlock()
	}
	r.mu.Unlock()
	now := time.Now()
	for _, o := range orphans {
		o.v.mu.Lock()
		if o.v.goneAt[o.tree].IsZero() {
			o.v.goneAt[o.tree] = now
		}
		o.v.mu.Unlock()
	}
	v.mu.Lock()
	v.dead, v.end = true, now
	v.mu.Unlock()
	sw.kill(v)
}

func (r *run) publishLoop(ctx context.Context, sw swarm, end time.Time) {
	cfg := r.cfg
	// The payload's bytes from a generator of its own: r.rng is the
	// arrivals goroutine's, and this loop runs beside it.
	prng := rand.New(rand.NewPCG(cfg.Seed, 0xba5e))
	base := make([]byte, r.size)
	for i := range base {
		base[i] = byte(prng.Uint32())
	}
	every := max(int(cfg.KeyframeInterval/cfg.ChunkInterval), 1)
	tk := time.NewTicker(cfg.ChunkInterval)
	defer tk.Stop()
	for seq := 0; seq < len(r.wallclock); seq++ {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		c := &chunk.Chunk{Broadcast: r.bid, Seq: uint64(seq), Wallclock: now.UnixNano()}
		if seq == 0 {
			c.Flags = chunk.FlagInit
			c.Payload = make([]byte, 1024)
		} else {
			c.Payload = append([]byte(nil), base...)
			copy(c.Payload, strconv.Itoa(seq))
			if (seq-1)%every == 0 {
				c.Flags = chunk.FlagKeyframe
			}
		}
		if r.priv != nil {
			if err := r.priv.seal(c); err != nil {
				cfg.Logger.Warn("seal", "seq", seq, "err", err)
			}
		}
		if cfg.Stripes > 0 {
			c.Data, c.Parity = uint32(cfg.Stripes), uint32(cfg.Parity)
		}
		r.signer.Sign(c)
		size := (&mesh.Message{Type: mesh.MsgChunk, Chunk: c}).Size()
		r.mu.Lock()
		r.wallclock[seq] = c.Wallclock
		r.frame[seq] = size + len(binary.AppendUvarint(nil, uint64(size)))
		r.published = seq + 1
		r.streamB += uint64(size)
		r.mu.Unlock()
		if err := sw.publish(ctx, c); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("publish", "seq", seq, "err", err)
		}
		if seq > 0 {
			select {
			case <-tk.C:
			case <-ctx.Done():
				return
			}
		}
	}
}
