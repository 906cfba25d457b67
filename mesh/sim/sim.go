package sim

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

// epoch is virtual time zero. Fixed, so chunk Wallclocks (and so every
// encoding) are the same from run to run.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	root        = 0 // the broadcaster's index
	phaseWidth  = int64(time.Millisecond)
	initPayload = 1024 // bytes of the init chunk
)

// point is a position on the plane, in ms of one-way delay.
type point struct{ x, y float32 }

// flow is a fair uplink's queue for one destination: q[head:] waits. The
// array is reused once the queue empties, not resliced away from the front
// (which made a new one every few messages: 4% of the bytes a large run
// allocated).
type flow struct {
	to   int32
	head int32
	q    []queued
}

type queued struct {
	msg *mesh.Message
	at  int64 // when it was handed to the uplink
}

// hold keeps a link's next messages behind one that was delayed by loss.
type hold struct {
	to    int32
	until int64
}

// node is the simulator's side of one peer: its mesh.Machine, its place and
// uplink, what the simulator knows of its place in the tree (from its
// events) and its playback record.
type node struct {
	n    *mesh.Machine // nil once gone
	info mesh.PeerInfo

	class     uint8
	forger    bool
	sybil     bool // adversary.go: claims, lies, withholds; not a viewer
	padder    bool // adversary.go: pads every chunk frame it sends
	gone      bool
	slots     int32
	upload    int64   // bit/s
	nsPerByte float64 // serialisation time per byte

	wake int64 // the node's NextTick: its Ticks before this are skipped

	busy      int64 // uplink busy until
	txPending bool  // fair uplink: a round is scheduled
	flows     []flow
	holdMax   int64 // latest hold; holds is empty when this is past
	holds     []hold

	arrived  int64
	left     int64 // departure time; -1 while present
	txCut    int64 // a message whose last byte leaves after this never arrives
	direct   int64 // direct latency from the source: propagation + serialisation of a chunk there
	attachTo int32 // target of the last attach sent; -1 none

	// The tree as this node's events tell it.
	parent       int32   // -1: not attached
	children     []int32 // by this node's EvChildAdded/EvChildRemoved
	followers    []int32 // nodes whose parent this node is, by their EvAttached
	parentGoneAt int64   // departure time of the parent, until attached again; -1 none
	withheldAt   int64   // attached under a sybil then, until under an honest parent; -1 none
	attachedPos  int32   // index in Sim.attached; -1 none
	presentPos   int32   // index in Sim.present; -1 none

	lastDup   uint64 // Stats.Duplicates at the last chunk
	chunkSent uint64 // chunk bytes sent
	ctrlSent  uint64 // other bytes sent

	play playback
}

// Sim is one simulation. It is single-threaded and not safe for concurrent
// use; everything it does follows from its Config.
type Sim struct {
	cfg Config
	// rng draws what the network and the nodes do (loss, each machine's
	// seed, the candidates a joiner is handed); pop what the population
	// does (places, classes, arrivals, departures, the kill). They are one
	// generator but under stripes (stripes.go), where the trees of one
	// run must share their viewers draw for draw.
	rng    *rand.Rand
	pop    *rand.Rand
	now    int64 // virtual ns since epoch
	end    int64
	events uint64
	err    error

	q         queue
	inFlight  msgTable // the messages of the evMessage events in q
	nodes     []node
	pos       []point   // by node, apart from nodes: a send touches little memory
	phases    [][]int32 // tick groups, one per phaseWidth of TickInterval
	tickBlock int       // consecutive arrivals that share a phase

	present  []int32 // viewers present
	attached []int32 // viewers attached, by their events

	// Topology.
	centres   [][2]float64
	weights   []float64 // cumulative region weights
	classCum  []float64 // cumulative class shares
	minOneWay int64
	lossP     []float64 // P(a message of k packets loses one), by k

	// The stream.
	broadcast string
	key       ed25519.PrivateKey
	verify    *verifyCache
	chunkSize int    // bytes of the payload of a media chunk
	payload   []byte // the payload every media chunk shares (stream.go)
	published int64  // media chunks published
	srcSer    int64  // serialisation of a media chunk at the source
	forged    []*chunk.Chunk
	forgedMsg []*mesh.Message
	padded    []*mesh.Message  // by seq: a padder's copy of each chunk (adversary.go)
	orig      [64]*chunk.Chunk // by seq: the chunks as published
	origInit  *chunk.Chunk

	// Peer IDs, cut from one string per batch.
	rootID mesh.PeerID
	idBuf  string
	idEnds []int
	idBase int

	// Arrivals.
	arrivals    []int64
	nextArrival int
	forgersLeft int
	relays      int // relaying viewers so far (under Stripes, which tree is theirs)
	paddersLeft int
	sybilTimes  []int64 // arrival times of the sybils
	nextSybil   int
	scratch     []mesh.PeerInfo
	pick        []int32

	// Tree sampling.
	depth []int32
	stamp []uint32
	gen   uint32
	stack []int32

	m metrics

	// Cut-through forwarding (cut.go): each node's last chunks' tails,
	// cutRing to a node; the time a delivery counts at (the tail of the
	// message being stepped; 0: now); the per-hop breakdown.
	cut       []cutRec
	draining  int32           // the node whose Ready is being drained, -1 none
	drainRest []mesh.Envelope // and its messages not yet sent
	deliverAt int64
	hops      hops

	// fragment, under stripes (stripes.go), takes every media chunk a
	// viewer delivers instead of play: a fragment, for the run's players.
	fragment func(i int32, seq uint64, at int64)

	// traceSend, when set (by tests), sees every message put on an uplink.
	traceSend func(from, to int32, m *mesh.Message, start, end int64)
}

// New builds a simulation: the broadcaster, the schedule of arrivals, the
// first chunk and the first ticks. Nothing runs until Run or RunUntil.
func New(cfg Config) (*Sim, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed_0f_9ee7_5c09e)),
		end:       int64(cfg.Duration),
		minOneWay: int64(cfg.MinOneWay),
		broadcast: "sim-" + strconv.FormatUint(cfg.Seed, 10),
		chunkSize: int(cfg.Bitrate / 8 * int64(cfg.ChunkInterval) / int64(time.Second)),
	}
	s.pop = s.rng
	if cfg.Stripes > 1 {
		s.pop = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed_0f_9ee7_5c09e))
		s.rng = rand.New(rand.NewPCG(cfg.Seed^uint64(cfg.stripe+1)*0x9e37_79b9_7f4a_7c15, cfg.Seed))
		s.broadcast += "-stripe" + strconv.Itoa(cfg.stripe)
	}
	s.m.init()
	s.hops.init()
	var seed [ed25519.SeedSize]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], s.pop.Uint64())
	}
	s.key = ed25519.NewKeyFromSeed(seed[:])
	// The cache must outlive the window of every node, or chunks would be
	// verified again; a few windows cost only pointers.
	window := cfg.Mesh.Window
	if window == 0 {
		window = mesh.DefaultConfig().Window
	}
	s.verify = newVerifyCache(s.broadcast, s.key.Public().(ed25519.PublicKey), 2*window+64)
	s.forged = make([]*chunk.Chunk, 64)
	s.forgedMsg = make([]*mesh.Message, 64)

	// Regions, weighted 1, 1/2, 1/3… so a few big ones and a tail.
	size := float64(cfg.PlaneSize) / 1e6
	total := 0.0
	for r := range cfg.Regions {
		s.centres = append(s.centres, [2]float64{
			size * (0.1 + 0.8*s.pop.Float64()),
			size * (0.1 + 0.8*s.pop.Float64()),
		})
		total += 1 / float64(r+1)
		s.weights = append(s.weights, total)
	}
	for r := range s.weights {
		s.weights[r] /= total
	}
	total = 0
	for _, k := range cfg.Classes {
		total += k.Share
		s.classCum = append(s.classCum, total)
	}
	for i := range s.classCum {
		s.classCum[i] /= total
	}

	nPhases := max(1, int(int64(cfg.TickInterval)/phaseWidth))
	s.phases = make([][]int32, nPhases)
	s.tickBlock = max(1, cfg.Nodes/nPhases/4)
	for p := range nPhases {
		s.push(event{at: int64(p) * phaseWidth, kind: evTick, to: int32(p)})
	}

	expect := cfg.Nodes + 1 + int(cfg.Churn*float64(cfg.Nodes)*cfg.Duration.Minutes()*1.2)
	s.nodes = make([]node, 0, expect)
	if err := s.addRoot(); err != nil {
		return nil, err
	}

	s.arrivals = make([]int64, cfg.Nodes)
	for i := range s.arrivals {
		s.arrivals[i] = s.pop.Int64N(int64(cfg.ArrivalWindow) + 1)
	}
	slices.Sort(s.arrivals)
	s.forgersLeft = cfg.Forgers
	s.paddersLeft = cfg.Padders
	if len(s.arrivals) > 0 {
		s.push(event{at: s.arrivals[0], kind: evArrive})
	}
	s.scheduleAdversaries()
	if cfg.Churn > 0 {
		t := int64(cfg.ArrivalWindow)
		s.push(event{at: t + s.churnGap(float64(cfg.Nodes)), kind: evChurnLeave})
		s.push(event{at: t + s.churnGap(float64(cfg.Nodes)), kind: evChurnArrive})
	}
	s.push(event{at: 0, kind: evPublish})
	s.push(event{at: int64(cfg.SampleInterval), kind: evSample})
	return s, nil
}

// progressStep is how much simulated time passes between two calls of
// Config.Progress.
const progressStep = 10 * time.Second

// Run runs a simulation to its end and reports.
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	if cfg.Stripes > 1 {
		st, err := newStriped(cfg)
		if err != nil {
			return nil, err
		}
		return drive(ctx, cfg, st.runUntil, st.report)
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return drive(ctx, cfg, s.RunUntil, s.Report)
}

// drive runs a simulation to cfg.Duration in steps of progressStep,
// telling cfg.Progress after each, and reports with the wall time and the
// peak RSS.
func drive(ctx context.Context, cfg Config, runUntil func(context.Context, time.Duration) error, rep func() *report.Report) (*report.Report, error) {
	wall := time.Now()
	for at := time.Duration(0); at < cfg.Duration; {
		at = min(at+progressStep, cfg.Duration)
		if err := runUntil(ctx, at); err != nil {
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(at)
		}
	}
	r := rep()
	r.WallS = math.Round(time.Since(wall).Seconds()*1000) / 1000
	r.RSSBytes = PeakRSS()
	return r, nil
}

// Now is the virtual time since the start.
func (s *Sim) Now() time.Duration { return time.Duration(s.now) }

// RunUntil processes every event up to virtual time t (at most the
// configured Duration) and leaves the clock there.
func (s *Sim) RunUntil(ctx context.Context, t time.Duration) error {
	until := min(int64(t), s.end)
	for s.q.Len() > 0 && s.q.top().at <= until {
		ev := s.q.pop()
		s.now = ev.at
		s.handle(&ev)
		s.events++
		if s.err != nil {
			return s.err
		}
		if s.events&0x3fff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	s.now = max(s.now, until)
	return nil
}

func (s *Sim) push(e event) { s.q.push(e) }

func (s *Sim) time() time.Time { return epoch.Add(time.Duration(s.now)) }

func (s *Sim) handle(ev *event) {
	switch ev.kind {
	case evMessage:
		s.m.msgEvents++
		msg := s.inFlight.take(ev.msg)
		dst := &s.nodes[ev.to]
		if dst.gone {
			s.m.droppedGone++
			return
		}
		src := &s.nodes[ev.from]
		if src.gone && ev.sent > src.txCut {
			s.m.droppedGone++
			return
		}
		var old cutRec
		undo := false
		if ev.gap > 0 {
			// Cut-through: stepped at its head; held whole at its tail.
			s.deliverAt = s.now + int64(ev.gap)*1000
			old, undo = s.cutArrive(ev.to, msg.Chunk, s.deliverAt)
		}
		if err := dst.n.Step(s.time(), src.info.ID, msg); err != nil {
			s.m.stepErrs++
		}
		delivered := s.drain(ev.to, msg.Chunk)
		s.deliverAt = 0
		if undo && !delivered {
			s.cutUndo(ev.to, msg.Chunk, old) // not taken: a duplicate or forged
		}
		if delivered || msg.Type != mesh.MsgChunk {
			return
		}
		// A chunk that was not delivered: a duplicate, too old or forged.
		if d := dst.n.Stats().Duplicates; d != dst.lastDup {
			s.m.dupBytes += (d - dst.lastDup) * uint64(msg.Chunk.Size())
			dst.lastDup = d
		}
	case evDown:
		if dst := &s.nodes[ev.to]; !dst.gone {
			dst.n.PeerDown(s.time(), s.nodes[ev.from].info.ID)
			s.drain(ev.to, nil)
		}
	case evTick:
		s.tick(int(ev.to))
		s.push(event{at: s.now + int64(s.cfg.TickInterval), kind: evTick, to: ev.to})
	case evPublish:
		s.publish()
		s.push(event{at: s.now + int64(s.cfg.ChunkInterval), kind: evPublish})
	case evArrive:
		s.arrive()
		s.nextArrival++
		if s.nextArrival < len(s.arrivals) {
			s.push(event{at: s.arrivals[s.nextArrival], kind: evArrive})
		}
	case evChurnArrive:
		s.arrive()
		s.push(event{at: s.now + s.churnGap(float64(s.cfg.Nodes)), kind: evChurnArrive})
	case evChurnLeave:
		if len(s.present) > 0 {
			i := s.present[s.pop.IntN(len(s.present))]
			s.depart(i, s.pop.Float64() < s.cfg.GracefulLeave)
		}
		s.push(event{at: s.now + s.churnGap(float64(max(len(s.present), 1))), kind: evChurnLeave})
	case evUplink:
		s.round(ev.to)
	case evSample:
		s.sample()
		s.push(event{at: s.now + int64(s.cfg.SampleInterval), kind: evSample})
	case evSybil:
		s.arriveSybil()
		s.nextSybil++
		if s.nextSybil < len(s.sybilTimes) {
			s.push(event{at: s.sybilTimes[s.nextSybil], kind: evSybil})
		}
	case evKill:
		s.killMany()
	case evBeat:
		s.beat()
		s.push(event{at: s.now + int64(s.cfg.BeatInterval), kind: evBeat})
	}
}

// churnGap draws the time to the next event of a Poisson process of Churn
// × n per minute.
func (s *Sim) churnGap(n float64) int64 {
	rate := s.cfg.Churn * n / float64(time.Minute) // per ns
	return max(1, int64(s.pop.ExpFloat64()/rate))
}

func (s *Sim) tick(p int) {
	list := s.phases[p]
	now := s.time()
	k := 0
	for _, i := range list {
		nd := &s.nodes[i]
		if nd.gone {
			continue
		}
		list[k] = i
		k++
		if nd.wake > s.now {
			continue // nothing due: most ticks of most nodes
		}
		nd.n.Tick(now)
		if nd.n.HasReady() {
			s.drain(i, nil)
		} else {
			s.setWake(i)
		}
	}
	s.phases[p] = list[:k]
}

// drain carries out what node i's Ready asks, and reports whether it
// delivered chunk want.
func (s *Sim) drain(i int32, want *chunk.Chunk) (delivered bool) {
	defer s.setWake(i)
	rd := s.nodes[i].n.Ready()
	for k, e := range rd.Messages {
		s.draining, s.drainRest = i, rd.Messages[k+1:] // for cutTimes
		s.send(i, e)
	}
	s.draining, s.drainRest = -1, nil
	for _, c := range rd.Deliver {
		s.deliver(i, c)
		delivered = delivered || c == want
	}
	for k := range rd.Events {
		s.onEvent(i, &rd.Events[k])
	}
	return delivered
}

// setWake records when node i next has something to do in a Tick. Every
// input to a node ends in drain, which calls this.
func (s *Sim) setWake(i int32) {
	nd := &s.nodes[i]
	if nd.n == nil {
		return
	}
	w := nd.n.NextTick()
	switch {
	case w.IsZero():
		nd.wake = 0
	case w.Sub(epoch) > time.Duration(math.MaxInt64/2):
		nd.wake = math.MaxInt64
	default:
		nd.wake = int64(w.Sub(epoch))
	}
}

// index returns the node of a peer ID ("n<index>"), or -1.
func (s *Sim) index(id mesh.PeerID) int32 {
	if len(id) < 2 || id[0] != 'n' {
		return -1
	}
	v := 0
	for j := 1; j < len(id); j++ {
		d := id[j] - '0'
		if d > 9 || v > math.MaxInt32/10 {
			return -1
		}
		v = v*10 + int(d)
	}
	if v >= len(s.nodes) {
		return -1
	}
	return int32(v)
}

// peerID returns node i's ID, "n<i>". IDs are cut from strings made for
// 1,024 nodes at a time, so that their bytes, read for every message sent,
// sit together in memory. Nodes are numbered in order and each asks for
// its own ID (the root's is kept apart), so a batch is made once.
func (s *Sim) peerID(i int) mesh.PeerID {
	if i < s.idBase || i >= s.idBase+len(s.idEnds) {
		var b []byte
		s.idEnds = s.idEnds[:0]
		for j := i; j < i+1024; j++ {
			b = append(b, 'n')
			b = strconv.AppendInt(b, int64(j), 10)
			s.idEnds = append(s.idEnds, len(b))
		}
		s.idBuf, s.idBase = string(b), i
	}
	k := i - s.idBase
	start := 0
	if k > 0 {
		start = s.idEnds[k-1]
	}
	return mesh.PeerID(s.idBuf[start:s.idEnds[k]])
}
