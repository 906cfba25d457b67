package sim

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
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

// flow is a fair uplink's queue for one destination.
type flow struct {
	to int32
	q  []queued
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
	cfg    Config
	rng    *rand.Rand
	now    int64 // virtual ns since epoch
	end    int64
	events uint64
	err    error

	q         queue
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
	chunkSize int   // bytes of the payload of a media chunk
	published int64 // media chunks published
	srcSer    int64 // serialisation of a media chunk at the source
	forged    []*chunk.Chunk
	forgedMsg []*mesh.Message

	// Peer IDs, cut from one string per batch.
	rootID mesh.PeerID
	idBuf  string
	idEnds []int
	idBase int

	// Arrivals.
	arrivals    []int64
	nextArrival int
	forgersLeft int
	scratch     []mesh.PeerInfo
	pick        []int32

	// Tree sampling.
	depth []int32
	stamp []uint32
	gen   uint32
	stack []int32

	m metrics

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
	s.m.init()
	var seed [ed25519.SeedSize]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], s.rng.Uint64())
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
			size * (0.1 + 0.8*s.rng.Float64()),
			size * (0.1 + 0.8*s.rng.Float64()),
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
		s.arrivals[i] = s.rng.Int64N(int64(cfg.ArrivalWindow) + 1)
	}
	slices.Sort(s.arrivals)
	s.forgersLeft = cfg.Forgers
	if len(s.arrivals) > 0 {
		s.push(event{at: s.arrivals[0], kind: evArrive})
	}
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
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	wall := time.Now()
	for at := time.Duration(0); at < cfg.Duration; {
		at = min(at+progressStep, cfg.Duration)
		if err := s.RunUntil(ctx, at); err != nil {
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(at)
		}
	}
	r := s.Report()
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
		if err := dst.n.Step(s.time(), src.info.ID, ev.msg); err != nil {
			s.m.stepErrs++
		}
		if s.drain(ev.to, ev.msg.Chunk) || ev.msg.Type != mesh.MsgChunk {
			return
		}
		// A chunk that was not delivered: a duplicate, too old or forged.
		if d := dst.n.Stats().Duplicates; d != dst.lastDup {
			s.m.dupBytes += (d - dst.lastDup) * uint64(ev.msg.Chunk.Size())
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
			i := s.present[s.rng.IntN(len(s.present))]
			s.depart(i, s.rng.Float64() < s.cfg.GracefulLeave)
		}
		s.push(event{at: s.now + s.churnGap(float64(max(len(s.present), 1))), kind: evChurnLeave})
	case evUplink:
		s.round(ev.to)
	case evSample:
		s.sample()
		s.push(event{at: s.now + int64(s.cfg.SampleInterval), kind: evSample})
	}
}

// churnGap draws the time to the next event of a Poisson process of Churn
// × n per minute.
func (s *Sim) churnGap(n float64) int64 {
	rate := s.cfg.Churn * n / float64(time.Minute) // per ns
	return max(1, int64(s.rng.ExpFloat64()/rate))
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
	for _, e := range rd.Messages {
		s.send(i, e)
	}
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

// prop is the one-way propagation delay between two nodes.
func (s *Sim) prop(a, b int32) int64 {
	pa, pb := s.pos[a], s.pos[b]
	dx, dy := float64(pa.x-pb.x), float64(pa.y-pb.y)
	return s.minOneWay + int64(math.Sqrt(dx*dx+dy*dy)*1e6)
}

// send puts a message on the sender's uplink and schedules its arrival.
func (s *Sim) send(from int32, e mesh.Envelope) {
	to := s.index(e.To.ID)
	if to < 0 || to == from {
		s.m.badDest++
		return
	}
	sn := &s.nodes[from]
	msg := e.Msg
	if msg.Type == mesh.MsgChunk && sn.forger && !msg.Chunk.IsInit() {
		msg = s.forge(msg.Chunk)
	}
	if msg.Type == mesh.MsgAttach {
		sn.attachTo = to
	}
	if s.cfg.Uplink == UplinkFair && (sn.busy > s.now || sn.txPending) {
		s.enqueue(from, to, msg)
		return
	}
	s.transmit(from, to, msg, max(s.now, sn.busy), s.now)
}

// transmit sends msg from the sender's uplink starting at start (it was
// handed to the uplink at queued) and schedules its arrival.
func (s *Sim) transmit(from, to int32, msg *mesh.Message, start, queued int64) {
	sn := &s.nodes[from]
	size := msg.Size()
	if wait := start - queued; wait > s.m.maxBacklog[min(from, 1)] {
		s.m.maxBacklog[min(from, 1)] = wait // [0] the broadcaster, [1] any viewer
	}
	end := start + int64(float64(size)*sn.nsPerByte)
	sn.busy = end
	prop := s.prop(from, to)
	at := end + prop
	lost := false
	if s.cfg.Loss > 0 && s.rng.Float64() < s.lossProb(size) {
		at += 2 * prop // retransmitted after a round trip
		lost = true
		s.m.lostMsgs++
	}
	if lost || sn.holdMax > s.now {
		at = s.fifo(sn, to, at, lost)
	}
	if msg.Type == mesh.MsgChunk {
		sn.chunkSent += uint64(size)
		s.m.chunkBytes += uint64(size)
		s.m.chunkMsgs++
	} else {
		sn.ctrlSent += uint64(size)
		s.m.ctrlBytes += uint64(size)
		s.m.ctrlMsgs++
	}
	if s.traceSend != nil {
		s.traceSend(from, to, msg, start, end)
	}
	s.push(event{at: at, kind: evMessage, to: to, from: from, msg: msg, sent: end})
}

// enqueue puts a message in the sender's queue for its destination, for
// the fair uplink: the queues take turns, one message each per round.
func (s *Sim) enqueue(from, to int32, msg *mesh.Message) {
	sn := &s.nodes[from]
	k := -1
	for j := range sn.flows {
		if sn.flows[j].to == to {
			k = j
			break
		}
	}
	if k < 0 {
		k = len(sn.flows)
		if k < cap(sn.flows) {
			sn.flows = sn.flows[:k+1]
			sn.flows[k].to, sn.flows[k].q = to, sn.flows[k].q[:0]
		} else {
			sn.flows = append(sn.flows, flow{to: to})
		}
	}
	sn.flows[k].q = append(sn.flows[k].q, queued{msg: msg, at: s.now})
	if !sn.txPending {
		sn.txPending = true
		s.push(event{at: max(s.now, sn.busy), kind: evUplink, to: from})
	}
}

// round sends one message from each of node i's queues, back to back, and
// comes back when they have gone.
func (s *Sim) round(i int32) {
	sn := &s.nodes[i]
	sn.txPending = false
	if sn.gone {
		sn.flows = nil
		return
	}
	k := 0
	for j := range sn.flows {
		f := &sn.flows[j]
		q := f.q[0]
		f.q[0] = queued{}
		f.q = f.q[1:]
		s.transmit(i, f.to, q.msg, max(s.now, sn.busy), q.at)
		if len(f.q) > 0 {
			sn.flows[k], sn.flows[j] = sn.flows[j], sn.flows[k]
			k++
		}
	}
	sn.flows = sn.flows[:k]
	if k > 0 {
		sn.txPending = true
		s.push(event{at: sn.busy, kind: evUplink, to: i})
	}
}

// fifo keeps a link in order: no message arrives before one sent earlier
// on the same link that loss held back. It records a new hold when this
// message is itself held.
func (s *Sim) fifo(sn *node, to int32, at int64, lost bool) int64 {
	k := 0
	found := -1
	sn.holdMax = 0
	for _, h := range sn.holds {
		if h.until <= s.now {
			continue // every later message arrives after it anyway
		}
		if h.to == to {
			at = max(at, h.until)
			found = k
		}
		sn.holds[k] = h
		sn.holdMax = max(sn.holdMax, h.until)
		k++
	}
	sn.holds = sn.holds[:k]
	switch {
	case found >= 0:
		sn.holds[found].until = at
	case lost:
		sn.holds = append(sn.holds, hold{to: to, until: at})
	default:
		return at
	}
	sn.holdMax = max(sn.holdMax, at)
	return at
}

// lossProb is the probability that a message of size bytes loses at least
// one of its packets.
func (s *Sim) lossProb(size int) float64 {
	k := (size + s.cfg.PacketSize - 1) / s.cfg.PacketSize
	for len(s.lossP) <= k {
		s.lossP = append(s.lossP, 1-math.Pow(1-s.cfg.Loss, float64(len(s.lossP))))
	}
	return s.lossP[k]
}

// forge returns a message carrying a copy of c with a broken signature,
// one per sequence number.
func (s *Sim) forge(c *chunk.Chunk) *mesh.Message {
	k := c.Seq % uint64(len(s.forged))
	if f := s.forged[k]; f != nil && f.Seq == c.Seq {
		return s.forgedMsg[k]
	}
	f := &chunk.Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Flags: c.Flags, Payload: c.Payload}
	f.Signature = append([]byte(nil), c.Signature...)
	f.Signature[0] ^= 0xff
	s.forged[k] = f
	s.forgedMsg[k] = &mesh.Message{Type: mesh.MsgChunk, Chunk: f}
	return s.forgedMsg[k]
}

func (s *Sim) isForged(c *chunk.Chunk) bool {
	f := s.forged[c.Seq%uint64(len(s.forged))]
	return f == c
}

// meshConfig is node i's mesh.Config.
func (s *Sim) meshConfig(i int, slots int) mesh.Config {
	c := s.cfg.Mesh
	c.Self = mesh.PeerInfo{ID: s.peerID(i)}
	c.Root = mesh.PeerInfo{ID: s.rootID}
	c.Broadcast = s.broadcast
	c.Key = s.key.Public().(ed25519.PublicKey)
	c.Verify = s.verify.verify
	c.Slots = slots
	c.Rand = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	return c
}

func (s *Sim) addRoot() error {
	upload := int64(float64(s.cfg.SourceSlots) * float64(s.cfg.Bitrate) * s.cfg.Headroom)
	c := s.centres[0]
	x, y := s.near(c)
	s.rootID = s.peerID(root)
	n, err := mesh.New(s.meshConfig(root, s.cfg.SourceSlots))
	if err != nil {
		return fmt.Errorf("sim: broadcaster: %w", err)
	}
	s.nodes = append(s.nodes, node{
		n: n, info: mesh.PeerInfo{ID: s.rootID},
		slots: int32(s.cfg.SourceSlots), upload: upload, nsPerByte: 8e9 / float64(upload),
		left: -1, play: playback{first: -1}, parent: -1, attachTo: -1, parentGoneAt: -1, attachedPos: -1, presentPos: -1,
	})
	s.pos = append(s.pos, point{x, y})
	s.phases[0] = append(s.phases[0], root)
	// A media chunk's size on the wire, for the direct latency.
	probe := chunk.Chunk{Broadcast: s.broadcast, Seq: 1 << 20, Wallclock: epoch.UnixNano(), Payload: make([]byte, s.chunkSize), Signature: make([]byte, ed25519.SignatureSize)}
	s.srcSer = int64(float64((&mesh.Message{Type: mesh.MsgChunk, Chunk: &probe}).Size()) * 8e9 / float64(upload))
	return nil
}

// near draws a point around a centre, on the plane.
func (s *Sim) near(c [2]float64) (float32, float32) {
	size := float64(s.cfg.PlaneSize) / 1e6
	sd := float64(s.cfg.Spread) / 1e6
	x := min(max(c[0]+s.rng.NormFloat64()*sd, 0), size)
	y := min(max(c[1]+s.rng.NormFloat64()*sd, 0), size)
	return float32(x), float32(y)
}

func (s *Sim) place() (float32, float32) {
	if s.rng.Float64() < s.cfg.Scattered {
		size := float64(s.cfg.PlaneSize) / 1e6
		return float32(s.rng.Float64() * size), float32(s.rng.Float64() * size)
	}
	u := s.rng.Float64()
	r := 0
	for r < len(s.weights)-1 && u >= s.weights[r] {
		r++
	}
	return s.near(s.centres[r])
}

// arrive adds a viewer: it gets the root and a few attached viewers as
// candidates and starts joining at once.
func (s *Sim) arrive() {
	i := len(s.nodes)
	u := s.rng.Float64()
	k := 0
	for k < len(s.classCum)-1 && u >= s.classCum[k] {
		k++
	}
	cls := s.cfg.Classes[k]
	upload := cls.MinUpload
	if cls.MaxUpload > cls.MinUpload {
		upload += s.rng.Int64N(cls.MaxUpload - cls.MinUpload + 1)
	}
	slots := 0
	if cls.Relay {
		slots = min(mesh.SlotsFor(upload, s.cfg.Bitrate, s.cfg.Headroom), s.cfg.MaxSlots)
	}
	x, y := s.place()
	n, err := mesh.New(s.meshConfig(i, slots))
	if err != nil {
		s.err = fmt.Errorf("sim: viewer %d: %w", i, err)
		return
	}
	forger := false
	if s.forgersLeft > 0 && slots > 0 && s.nextArrival < len(s.arrivals) {
		forger = true
		s.forgersLeft--
	}
	s.nodes = append(s.nodes, node{
		n: n, info: mesh.PeerInfo{ID: s.peerID(i)}, class: uint8(k), forger: forger,
		slots: int32(slots), upload: upload, nsPerByte: 8e9 / float64(upload),
		arrived: s.now, left: -1, play: playback{first: -1}, parent: -1, attachTo: -1, parentGoneAt: -1,
		attachedPos: -1, presentPos: int32(len(s.present)),
	})
	s.pos = append(s.pos, point{x, y})
	s.present = append(s.present, int32(i))
	nd := &s.nodes[i]
	nd.direct = s.prop(root, int32(i)) + s.srcSer
	s.m.joins++

	// What a directory would hand out: the root and some attached viewers.
	cands := append(s.scratch[:0], s.nodes[root].info)
	s.pick = s.pick[:0]
	if len(s.attached) <= s.cfg.Candidates {
		s.pick = append(s.pick, s.attached...)
	} else {
		for len(s.pick) < s.cfg.Candidates {
			c := s.attached[s.rng.IntN(len(s.attached))]
			dup := false
			for _, p := range s.pick {
				dup = dup || p == c
			}
			if !dup {
				s.pick = append(s.pick, c)
			}
		}
	}
	for _, p := range s.pick {
		cands = append(cands, s.nodes[p].info)
	}
	s.scratch = cands
	now := s.time()
	n.AddCandidates(now, cands...)
	n.Tick(now)
	s.drain(int32(i), nil)
	// Phases go by blocks of consecutive arrivals: their nodes were
	// allocated one after the other, so a tick walks memory in order.
	p := (i / s.tickBlock) % len(s.phases)
	s.phases[p] = append(s.phases[p], int32(i))
}

// depart takes viewer i out: abruptly (it vanishes; its connections may
// reset) or gracefully (it calls Leave and its last messages still go out).
func (s *Sim) depart(i int32, graceful bool) {
	nd := &s.nodes[i]
	s.m.leaves++
	s.m.add(s.settle(i, s.now))
	st := nd.n.Stats()
	s.m.addStats(&st)
	nd.txCut = s.now
	if graceful {
		s.m.graceful++
		nd.n.Leave(s.time())
		s.drain(i, nil)
		for _, f := range nd.flows { // its last messages still go, in order
			for _, q := range f.q {
				s.transmit(i, f.to, q.msg, max(s.now, nd.busy), q.at)
			}
		}
		nd.flows = nil
		nd.txCut = max(s.now, nd.busy)
	} else if s.rng.Float64() < s.cfg.ResetProb {
		s.m.resets++
		s.resetLinks(i)
	}
	for _, f := range nd.followers {
		s.nodes[f].parentGoneAt = s.now
	}
	if nd.parent >= 0 {
		s.unfollow(i)
	}
	s.setAttached(i, false)
	// Out of present: swap-remove.
	last := s.present[len(s.present)-1]
	s.present[nd.presentPos] = last
	s.nodes[last].presentPos = nd.presentPos
	s.present = s.present[:len(s.present)-1]
	nd.presentPos = -1
	nd.gone = true
	nd.left = s.now
	nd.n = nil
	nd.holds, nd.children, nd.followers, nd.flows = nil, nil, nil, nil
}

// resetLinks sends PeerDown to the departed node's neighbours, one one-way
// delay later.
func (s *Sim) resetLinks(i int32) {
	nd := &s.nodes[i]
	s.pick = s.pick[:0]
	add := func(j int32) {
		if j < 0 || j == i || s.nodes[j].gone {
			return
		}
		for _, p := range s.pick {
			if p == j {
				return
			}
		}
		s.pick = append(s.pick, j)
	}
	add(nd.parent)
	add(nd.attachTo)
	for _, c := range nd.children {
		add(c)
	}
	for _, f := range nd.followers {
		add(f)
	}
	for _, j := range s.pick {
		s.push(event{at: s.now + s.prop(i, j), kind: evDown, to: j, from: i})
	}
}

func (s *Sim) setAttached(i int32, on bool) {
	nd := &s.nodes[i]
	switch {
	case i == root:
	case on && nd.attachedPos < 0:
		nd.attachedPos = int32(len(s.attached))
		s.attached = append(s.attached, i)
	case !on && nd.attachedPos >= 0:
		last := s.attached[len(s.attached)-1]
		s.attached[nd.attachedPos] = last
		s.nodes[last].attachedPos = nd.attachedPos
		s.attached = s.attached[:len(s.attached)-1]
		nd.attachedPos = -1
	}
}

// unfollow removes node i from its parent's followers.
func (s *Sim) unfollow(i int32) {
	p := s.nodes[i].parent
	s.nodes[i].parent = -1
	if p < 0 {
		return
	}
	s.nodes[p].followers = removeInt32(s.nodes[p].followers, i)
}

func removeInt32(l []int32, v int32) []int32 {
	for k, x := range l {
		if x == v {
			l[k] = l[len(l)-1]
			return l[:len(l)-1]
		}
	}
	return l
}

func (s *Sim) onEvent(i int32, e *mesh.Event) {
	nd := &s.nodes[i]
	switch e.Type {
	case mesh.EvAttached:
		p := s.index(e.Peer)
		if nd.parent != p {
			s.unfollow(i)
			if p >= 0 {
				nd.parent = p
				s.nodes[p].followers = append(s.nodes[p].followers, i)
			}
		}
		nd.attachTo = -1
		s.setAttached(i, true)
		if nd.parentGoneAt >= 0 {
			s.m.rejoin.AddDuration(time.Duration(s.now - nd.parentGoneAt))
			nd.parentGoneAt = -1
		} else if e.Rejoin {
			s.m.rejoinsOther++
		}
	case mesh.EvParentLost:
		s.unfollow(i)
		s.setAttached(i, false)
		if int(e.Loss) < len(s.m.lost) {
			s.m.lost[e.Loss]++
		}
	case mesh.EvDetached:
		s.unfollow(i)
		s.setAttached(i, false)
	case mesh.EvChildAdded:
		if c := s.index(e.Peer); c >= 0 {
			nd.children = append(nd.children, c)
		}
		if len(nd.children) > int(nd.slots) {
			s.m.overSlots++
		}
	case mesh.EvChildRemoved:
		if c := s.index(e.Peer); c >= 0 {
			nd.children = removeInt32(nd.children, c)
		}
	case mesh.EvForged:
		s.m.forgedEvents++
	case mesh.EvLoopRefused:
		s.m.loopRefused++
	}
}

// publish cuts, signs and publishes the next chunk (and the init chunk
// first).
func (s *Sim) publish() {
	if s.now >= s.end {
		return
	}
	r := s.nodes[root].n
	now := s.time()
	if s.published == 0 {
		c := &chunk.Chunk{Broadcast: s.broadcast, Seq: 0, Wallclock: now.UnixNano(), Flags: chunk.FlagInit, Payload: make([]byte, initPayload)}
		c.Sign(s.key)
		_ = r.Publish(now, c)
		s.m.streamBytes += uint64(c.Size())
		s.drain(root, nil)
	}
	s.published++
	seq := uint64(s.published)
	p := make([]byte, s.chunkSize)
	binary.BigEndian.PutUint64(p, seq)
	c := &chunk.Chunk{Broadcast: s.broadcast, Seq: seq, Wallclock: now.UnixNano(), Payload: p}
	if every := int64(s.cfg.KeyframeInterval / s.cfg.ChunkInterval); every <= 1 || (s.published-1)%every == 0 {
		c.Flags |= chunk.FlagKeyframe
	}
	c.Sign(s.key)
	if err := r.Publish(now, c); err != nil {
		s.err = err
		return
	}
	s.m.streamBytes += uint64(c.Size())
	s.drain(root, nil)
}

// deliver records a chunk that viewer i's node delivered.
func (s *Sim) deliver(i int32, c *chunk.Chunk) {
	if i == root {
		return
	}
	if s.isForged(c) {
		s.m.forgedDelivered++
	}
	if c.IsInit() {
		return
	}
	nd := &s.nodes[i]
	wall := c.Wallclock - epoch.UnixNano()
	lat := s.now - wall
	s.m.latencyAll.add(float64(lat) / 1e6)
	if wall >= nd.arrived {
		s.m.latency.add(float64(lat) / 1e6)
	}
	s.m.stretch.add(float64(lat) / float64(nd.direct))
	s.m.neededBytes += uint64(c.Size())
	po := int64(s.cfg.Playout)
	if nd.play.first < 0 {
		// Playback starts here: this chunk (a keyframe, normally) and the
		// ones after it whose deadline is still ahead count.
		nd.play.first = s.now
		nd.play.lo = c.Seq
		if d := s.now - po; d > 0 {
			ci := int64(s.cfg.ChunkInterval)
			nd.play.lo = max(nd.play.lo, uint64((d+ci-1)/ci+1))
		}
		s.m.join.AddDuration(time.Duration(s.now - nd.arrived))
	}
	nd.play.note(c.Seq, s.now <= wall+po)
}
