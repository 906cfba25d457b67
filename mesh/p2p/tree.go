package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/owner"
	"github.com/peerscope/peerscope/mesh"
)

// ProtocolID is the stream protocol of the relay tree.
//
// 1.1.0 replaced the status's hearts and web fields (16, 17) with named
// counters (18): a 1.0.0 node and a 1.1.0 node refuse each other's streams
// rather than lose those counts silently. 1.2.0 added receipts and edges
// (message types a 1.1.0 node refuses), the pong's sequence number and the
// attach's withheld flag, on which earned capacity and the detection of a
// withholding parent rest: 1.1.0 and 1.2.0 nodes refuse each other's
// streams, so that no tree mixes nodes that check with nodes that cannot be
// checked.
const ProtocolID protocol.ID = "/peerscope/mesh/1.2.0"

// readBufSize is the bufio size of a reader: enough for a control message
// in one read, and smaller than a chunk, so that the bulk of a chunk frame
// is read straight into its own buffer instead of being copied through
// bufio's.
const readBufSize = 8 << 10

// Tree is a mesh.Machine running over a libp2p host: this host's part in
// one broadcast's relay tree.
type Tree struct {
	h       host.Host
	handler *handlerRef // what the host's stream handler reaches this Tree by
	sm      *mesh.Machine
	self    mesh.PeerInfo
	opt     options
	log     *slog.Logger

	inbox   chan inbound
	publish chan publishReq
	calls   *owner.Inbox  // closures to run on the owner goroutine
	kick    chan struct{} // cap 1: pending peer events or counters
	quit    chan struct{} // closed by Close
	done    chan struct{} // closed when the owner has stopped

	mu      sync.Mutex
	closed  bool
	downs   map[peer.ID]struct{}        // peers reported gone, for the owner
	streams map[network.Stream]struct{} // live inbound streams
	perPeer map[peer.ID]int             // live inbound streams per peer
	wg      sync.WaitGroup              // readers and writers
	notify  *network.NotifyBundle
	closeMu sync.Once

	counters []mesh.Counter // cfg.Counters
	countMu  sync.Mutex
	counts   []uint64 // per counter: events counted here, not yet handed to the state machine
	gauges   []uint64 // per counter: a gauge's level to hand over…
	gaugeSet []bool   // …if set since the last hand-over
	edge     uint64   // the newest live edge LiveEdge was told, not yet handed over; 0: none

	// Owned by the owner goroutine.
	writers map[peer.ID]*writer
	ids     map[mesh.PeerID]peer.ID
	names   map[peer.ID]mesh.PeerID
	reaped  time.Time
	retired []*writer        // reaped writers that may still be closing
	pings   map[peer.ID]ping // the last ping to each peer, to time its pong

	// liveAddrs: Self was taken from the host, so an Attach carries the
	// host's addresses of the moment (see drain).
	liveAddrs bool
	// protectTag protects the connections of the peers this tree writes
	// to (its parent, children, probes) from the connection manager.
	protectTag string

	// tamper, if set (tests only: SetTamper), may replace a message before
	// it is sent.
	tamper func(to mesh.PeerID, m *mesh.Message) *mesh.Message
}

// ping is a ping sent: its nonce (the time it carries) and when it went.
type ping struct {
	nonce int64
	sent  time.Time
}

type inbound struct {
	from peer.ID
	msg  *mesh.Message
}

type publishReq struct {
	c   *chunk.Chunk
	err chan error
}

// New starts a node for cfg on host h. cfg.Self defaults to the host (Info);
// cfg.Key defaults to the ed25519 key in cfg.Root.ID. The node speaks
// ProtocolID (or the WithProtocol ID) on h until Close.
func New(h host.Host, cfg mesh.Config, opts ...Option) (*Tree, error) {
	o := defaultOptions()
	for _, f := range opts {
		if err := f(&o); err != nil {
			return nil, err
		}
	}
	liveAddrs := cfg.Self.ID == ""
	if liveAddrs {
		cfg.Self = Info(h)
	} else if cfg.Self.ID != MeshID(h.ID()) {
		return nil, fmt.Errorf("%w: %s", ErrWrongHost, cfg.Self.ID)
	}
	if cfg.Key == nil && cfg.Verify == nil && cfg.Root.ID != "" {
		k, err := PublicKey(cfg.Root.ID)
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	}
	sm, err := mesh.New(cfg)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	n := &Tree{
		h:       h,
		sm:      sm,
		self:    cfg.Self,
		opt:     o,
		log:     o.logger.With("node", shortID(cfg.Self.ID)),
		inbox:   make(chan inbound, o.inbox),
		publish: make(chan publishReq),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    done,
		calls:   owner.New(0, done, ErrClosed),
		downs:   make(map[peer.ID]struct{}),
		streams: make(map[network.Stream]struct{}),
		perPeer: make(map[peer.ID]int),
		writers: make(map[peer.ID]*writer),
		ids:     make(map[mesh.PeerID]peer.ID),
		names:   make(map[peer.ID]mesh.PeerID),
		pings:   make(map[peer.ID]ping),

		liveAddrs:  liveAddrs,
		protectTag: "peerscope-tree " + string(o.protocol),

		counters: slices.Clone(cfg.Counters),
		counts:   make([]uint64, len(cfg.Counters)),
		gauges:   make([]uint64, len(cfg.Counters)),
		gaugeSet: make([]bool, len(cfg.Counters)),
	}
	n.notify = &network.NotifyBundle{DisconnectedF: func(nw network.Network, c network.Conn) {
		if p := c.RemotePeer(); nw.Connectedness(p) != network.Connected {
			n.peerGone(p)
		}
	}}
	h.Network().Notify(n.notify)
	n.handler = &handlerRef{}
	n.handler.t.Store(n)
	h.SetStreamHandler(o.protocol, n.handler.handle)
	go n.run()
	return n, nil
}

func shortID(id mesh.PeerID) string {
	if len(id) > 8 {
		return string(id[len(id)-8:])
	}
	return string(id)
}

// Info returns this node as a mesh peer.
func (n *Tree) Info() mesh.PeerInfo { return n.self }

// Host returns the libp2p host.
func (n *Tree) Host() host.Host { return n.h }

// Publish hands the broadcaster's node a signed chunk to send down the tree.
// The chunk must not be modified afterwards.
func (n *Tree) Publish(ctx context.Context, c *chunk.Chunk) error {
	// Encode the chunk once here, so that the writers (several goroutines)
	// only read its cached encoding.
	mesh.AppendFrame(nil, &mesh.Message{Type: mesh.MsgChunk, Chunk: c})
	req := publishReq{c: c, err: make(chan error, 1)}
	select {
	case n.publish <- req:
	case <-n.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.err:
		return err
	case <-n.done:
		return ErrClosed
	}
}

// AddCandidates tells the node of tree members it may join.
func (n *Tree) AddCandidates(peers ...mesh.PeerInfo) {
	peers = append([]mesh.PeerInfo(nil), peers...)
	_ = n.call(context.Background(), func() { n.sm.AddCandidates(n.opt.clock.Now(), peers...) })
}

// Status returns the node's place in the tree and its counters.
func (n *Tree) Status(ctx context.Context) (mesh.Status, mesh.Stats, error) {
	var st mesh.Status
	var stats mesh.Stats
	err := n.call(ctx, func() { st, stats = n.sm.Status(), n.sm.Stats() })
	return st, stats, err
}

// Count adds v to one of the tree's events counters (mesh.CounterEvents in
// the config's Counters) at this node; it goes up the tree with the
// statuses, and the broadcaster's Status().Counters has the total. It never
// blocks.
func (n *Tree) Count(name string, v uint64) error {
	i, err := n.counter(name, mesh.CounterEvents)
	if err != nil {
		return err
	}
	n.countMu.Lock()
	n.counts[i] += v
	n.countMu.Unlock()
	n.poke()
	return nil
}

// SetGauge sets this node's level of one of the tree's gauge counters
// (mesh.CounterGauge); the tree sums them up to the broadcaster. It never
// blocks.
func (n *Tree) SetGauge(name string, v uint64) error {
	i, err := n.counter(name, mesh.CounterGauge)
	if err != nil {
		return err
	}
	n.countMu.Lock()
	n.gauges[i], n.gaugeSet[i] = v, true
	n.countMu.Unlock()
	n.poke()
	return nil
}

// LiveEdge tells the node that the broadcast has reached seq (its
// broadcaster cut seq-1), as a source the node trusts says: the
// broadcaster's chat beat. The state machine (mesh.Machine.LiveEdge) takes
// it on the owner goroutine, refusing an edge beyond what could have been
// cut since this node's newest chunk; a node that holds much less and gets
// nothing new from its parent takes the parent for withholding. It never
// blocks.
func (n *Tree) LiveEdge(seq uint64) {
	if seq == 0 {
		return
	}
	n.countMu.Lock()
	n.edge = max(n.edge, seq)
	n.countMu.Unlock()
	n.poke()
}

func (n *Tree) counter(name string, kind mesh.CounterKind) (int, error) {
	for i, c := range n.counters {
		if c.Name == name && c.Kind == kind {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: %q", mesh.ErrUnknownCounter, name)
}

// takeCounts hands the state machine what Count, SetGauge and LiveEdge
// left.
func (n *Tree) takeCounts() {
	n.countMu.Lock()
	defer n.countMu.Unlock()
	if n.edge > 0 {
		n.sm.LiveEdge(n.opt.clock.Now(), n.edge)
		n.edge = 0
	}
	for i, c := range n.counters {
		if v := n.counts[i]; v > 0 {
			n.counts[i] = 0
			_ = n.sm.Count(c.Name, v)
		}
		if n.gaugeSet[i] {
			n.gaugeSet[i] = false
			_ = n.sm.SetGauge(c.Name, n.gauges[i])
		}
	}
}

func (n *Tree) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// call runs f on the owner goroutine, which drains Ready after it.
func (n *Tree) call(ctx context.Context, f func()) error { return n.calls.Call(ctx, f) }

// Close leaves the tree (telling the parent and the children), flushes
// what is queued for a short while, closes every stream and stops every
// goroutine the node started. It is safe to call more than once.
func (n *Tree) Close() error {
	n.closeMu.Do(func() {
		close(n.quit)
		<-n.done
		n.h.RemoveStreamHandler(n.opt.protocol)
		n.handler.t.Store(nil)
		n.h.Network().StopNotify(n.notify)
		n.mu.Lock()
		n.closed = true
		inbound := make([]network.Stream, 0, len(n.streams))
		for s := range n.streams {
			inbound = append(inbound, s)
		}
		n.mu.Unlock()
		for _, s := range inbound {
			_ = s.Reset()
		}
		// The writers write the Leave messages, then close their streams;
		// any that cannot within finishTimeout is aborted.
		waited := make(chan struct{})
		go func() { n.wg.Wait(); close(waited) }()
		t := time.NewTimer(finishTimeout)
		defer t.Stop()
		select {
		case <-waited:
		case <-t.C:
			for _, w := range n.writers {
				w.abort()
			}
			for _, w := range n.retired {
				w.abort()
			}
			<-waited
		}
		for p := range n.writers { // the owner has stopped: n.writers is ours
			n.h.ConnManager().Unprotect(p, n.protectTag)
		}
	})
	return nil
}

// peerGone records that a peer went away; the owner tells the state machine.
func (n *Tree) peerGone(p peer.ID) {
	n.mu.Lock()
	n.downs[p] = struct{}{}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// --- the owner goroutine ---

func (n *Tree) run() {
	defer close(n.done)
	clk := n.opt.clock
	t := clock.NewPacer(clk, n.opt.tick, maxTickWait)
	defer t.Stop()
	n.sm.Tick(clk.Now())
	n.drain()
	for {
		ticked := false
		select {
		case in := <-n.inbox:
			// One message, then its Ready at once: a chunk is forwarded
			// before the next message is verified.
			n.step(in)
		case <-t.C():
			// Step what has already arrived before the timers run: when
			// the process is short of CPU, a heartbeat or a chunk can sit
			// in the inbox past ParentTimeout, and a Tick taken first
			// (select picks at random) would call a live parent silent.
			for range cap(n.inbox) {
				select {
				case in := <-n.inbox:
					n.step(in)
					n.drain()
					continue
				default:
				}
				break
			}
			now := clk.Now()
			n.sm.Tick(now)
			if now.Sub(n.reaped) >= time.Second {
				n.reaped = now
				n.reapIdle(now)
			}
			ticked = true
		case req := <-n.publish:
			req.err <- n.sm.Publish(clk.Now(), req.c)
		case f := <-n.calls.Calls():
			f()
		case <-n.kick:
			n.takeDowns()
			n.takeCounts()
		case <-n.quit:
			n.sm.Leave(clk.Now())
			n.drain()
			for _, w := range n.writers {
				w.finish()
			}
			return
		}
		n.drain()
		if now := clk.Now(); ticked {
			t.Ticked(now, n.nextDue())
		} else {
			t.Changed(now, n.nextDue())
		}
	}
}

func (n *Tree) step(in inbound) {
	now := n.opt.clock.Now()
	from := n.nameOf(in.from)
	if in.msg.Type == mesh.MsgPong {
		// The shell times pongs too, so the peerstore (and the demo) know
		// the RTT to the peers the tree probed: from when this node sent
		// the ping the pong echoes (its time is only a nonce to match; a
		// peer's clock says nothing).
		if p, ok := n.pings[in.from]; ok && p.nonce == in.msg.Time {
			delete(n.pings, in.from)
			if rtt := now.Sub(p.sent); rtt > 0 && rtt < time.Minute {
				n.h.Peerstore().RecordLatency(in.from, rtt)
			}
		}
	}
	if err := n.sm.Step(now, from, in.msg); err != nil {
		n.log.Debug("step", "from", shortID(from), "type", in.msg.Type, "err", err)
	}
}

// reapIdle closes the writers that had nothing to send for idleTimeout:
// peers probed once, former parents. A later message opens a new stream.
func (n *Tree) reapIdle(now time.Time) {
	n.retired = slices.DeleteFunc(n.retired, func(w *writer) bool { return w.ctx.Err() != nil })
	for p, w := range n.writers {
		if now.Sub(w.used) > idleTimeout {
			w.finish()
			n.dropWriter(p)
			n.retired = append(n.retired, w) // for Close, should its stream not close
		}
	}
}

func (n *Tree) takeDowns() {
	n.mu.Lock()
	var gone []peer.ID
	for p := range n.downs {
		gone = append(gone, p)
	}
	clear(n.downs)
	n.mu.Unlock()
	now := n.opt.clock.Now()
	for _, p := range gone {
		if w := n.writers[p]; w != nil {
			w.abort()
			n.dropWriter(p)
		}
		n.sm.PeerDown(now, n.nameOf(p))
	}
}

// drain carries out the node's Ready until it has nothing more to say.
func (n *Tree) drain() {
	var dropped []peer.ID
	for n.sm.HasReady() {
		rd := n.sm.Ready()
		now := n.opt.clock.Now()
		for _, env := range rd.Messages {
			p, err := n.peerOf(env.To.ID)
			if err != nil {
				n.log.Debug("bad peer ID", "to", env.To.ID, "err", err)
				continue
			}
			w := n.writers[p]
			if w == nil {
				w = n.newWriter(p, env.To)
				n.writers[p] = w
				// The connection manager trims connections past its high
				// water, lowest value first: a flood of idle connections
				// must not make it cut the tree's links.
				n.h.ConnManager().Protect(p, n.protectTag)
			}
			m := env.Msg
			if m.Type == mesh.MsgPing {
				if len(n.pings) > 4096 {
					clear(n.pings)
				}
				n.pings[p] = ping{nonce: m.Time, sent: now}
			}
			if m.Type == mesh.MsgAttach && n.liveAddrs {
				// The state machine's Self is a snapshot from New; the
				// host's addresses change (a relay reservation made, a NAT
				// mapping learnt), and the parent passes these on to
				// others who may need them to reach this node.
				m.Addrs = Info(n.h).Addrs
			}
			if n.tamper != nil {
				m = n.tamper(env.To.ID, m)
			}
			out := outbound{m: m}
			if f := n.opt.sendFilter; f != nil {
				if out.m, out.raw = f(env.To.ID, m); out.m == nil {
					continue
				}
			}
			if !w.enqueue(now, out) {
				n.log.Info("peer too slow: dropped", "peer", shortID(env.To.ID))
				w.abort()
				n.dropWriter(p)
				dropped = append(dropped, p)
			}
		}
		if n.opt.deliver != nil {
			for _, c := range rd.Deliver {
				n.opt.deliver(c)
			}
		}
		if n.opt.events != nil {
			for _, e := range rd.Events {
				n.opt.events(e)
			}
		}
		// PeerDown only now: it would reuse the slices of rd.
		for _, p := range dropped {
			n.sm.PeerDown(now, n.nameOf(p))
		}
		dropped = dropped[:0]
	}
}

// dropWriter forgets p's writer, and no longer protects its connection.
func (n *Tree) dropWriter(p peer.ID) {
	delete(n.writers, p)
	n.h.ConnManager().Unprotect(p, n.protectTag)
}

func (n *Tree) nameOf(p peer.ID) mesh.PeerID {
	if id, ok := n.names[p]; ok {
		return id
	}
	id := MeshID(p)
	if len(n.names) > 4096 {
		clear(n.names)
	}
	n.names[p] = id
	return id
}

func (n *Tree) peerOf(id mesh.PeerID) (peer.ID, error) {
	if p, ok := n.ids[id]; ok {
		return p, nil
	}
	p, err := PeerID(id)
	if err != nil {
		return "", err
	}
	if len(n.ids) > 4096 {
		clear(n.ids)
	}
	n.ids[id] = p
	return p, nil
}

// SetSlots changes how many children the node adopts (mesh.Machine.SetSlots):
// the node follows the stream's measured bitrate with it. Children beyond
// the new count are dropped, each told where to go.
func (n *Tree) SetSlots(slots int) error {
	var err error
	if cerr := n.call(context.Background(), func() { err = n.sm.SetSlots(n.opt.clock.Now(), slots) }); cerr != nil {
		return cerr
	}
	return err
}

// Refuse puts peers out of the tree that were admitted before and are no
// longer (WithAdmit: a removed member, an expired token): their inbound
// streams are reset, the writer to them aborted, and the state machine
// hears they are down (a child is dropped, a parent left for another). A
// peer that comes back is checked again by WithAdmit.
func (n *Tree) Refuse(peers ...peer.ID) {
	if len(peers) == 0 {
		return
	}
	n.mu.Lock()
	var reset []network.Stream
	for s := range n.streams {
		if slices.Contains(peers, s.Conn().RemotePeer()) {
			reset = append(reset, s)
		}
	}
	n.mu.Unlock()
	for _, s := range reset {
		_ = s.Reset()
	}
	_ = n.call(context.Background(), func() {
		now := n.opt.clock.Now()
		for _, p := range peers {
			if w := n.writers[p]; w != nil {
				w.abort()
				n.dropWriter(p)
			}
			n.sm.PeerDown(now, n.nameOf(p))
		}
	})
}
