package mesh

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// network plays the part of the wire for the scenario tests
// (testdata/scenarios, run by scenario_test.go), in the manner of raft's
// test network: every message goes through a queue with a per-pair latency,
// and links can be cut, messages in flight dropped, peers killed. Time only
// moves when the script says so. It drives each Machine through its inputs
// only: New (with the node's slots), Step, Tick, Publish, AddCandidates,
// PeerDown, Leave, Count and SetGauge.
type network struct {
	t        *testing.T
	now      time.Time
	nodes    map[PeerID]*Machine
	slots    map[PeerID]int
	order    []PeerID
	lat      map[[2]PeerID]time.Duration // by pair, the smaller ID first
	defLat   time.Duration
	cut      map[[2]PeerID]bool // from, to
	forge    map[[2]PeerID]bool // from, to: chunks sent are forged
	withhold map[PeerID]bool    // the node's chunks never leave it
	sybil    map[PeerID]bool    // withholds, and lies in what it says of itself
	pad      map[PeerID]bool    // the node's chunk frames carry 64 KiB beyond the chunk
	browser  map[PeerID]bool    // asks for a welcome on its first join, as a page does
	down     map[PeerID]bool
	inflight []flight
	events   map[PeerID][]Event
	seen     map[PeerID]int       // events already printed
	sent     map[PeerID][]MsgType // messages made, since last asked
	got      map[PeerID][]uint64  // delivered sequence numbers, in order
	priv     ed25519.PrivateKey
	pub      ed25519.PublicKey
	seq      uint64
	keyEvery uint64 // stream keyframes=K: every K-th chunk is a keyframe (0: none)
	webMod   int    // set-web: node i serves i%webMod browsers
	tapped   uint64 // hearts counted at the nodes
	watch    func(from PeerID, e Envelope) bool
	matched  string
}

type flight struct {
	at       time.Time
	from, to PeerID
	msg      *Message
}

const root = PeerID("root")

// testCounters are what the scenario trees add up: taps (events) and web
// viewers (a gauge), each with chat's bound.
var testCounters = []Counter{{Name: "hearts", Kind: CounterEvents, MaxPerNode: 1000}, {Name: "web", Kind: CounterGauge, MaxPerNode: 256}}

func newNetwork(t *testing.T) *network {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.NewChaCha8([32]byte{1}))
	return &network{
		t:        t,
		now:      time.Unix(1_700_000_000, 0),
		nodes:    map[PeerID]*Machine{},
		slots:    map[PeerID]int{},
		lat:      map[[2]PeerID]time.Duration{},
		defLat:   time.Millisecond,
		cut:      map[[2]PeerID]bool{},
		forge:    map[[2]PeerID]bool{},
		withhold: map[PeerID]bool{},
		sybil:    map[PeerID]bool{},
		pad:      map[PeerID]bool{},
		browser:  map[PeerID]bool{},
		down:     map[PeerID]bool{},
		events:   map[PeerID][]Event{},
		seen:     map[PeerID]int{},
		sent:     map[PeerID][]MsgType{},
		got:      map[PeerID][]uint64{},
		priv:     priv,
		pub:      pub,
	}
}

func (nw *network) config(id PeerID, slots int) Config {
	cfg := DefaultConfig()
	cfg.Self = PeerInfo{ID: id}
	cfg.Root = PeerInfo{ID: root}
	cfg.Broadcast = "b1"
	cfg.Key = nw.pub
	cfg.Slots = slots
	cfg.ImproveInterval = -1
	cfg.Counters = testCounters
	cfg.Rand = rand.New(rand.NewPCG(uint64(len(nw.nodes)), 7))
	return cfg
}

// add starts a node; mod may change its config (ImproveInterval).
func (nw *network) add(id PeerID, slots int, mod ...func(*Config)) *Machine {
	nw.t.Helper()
	cfg := nw.config(id, slots)
	for _, f := range mod {
		f(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		nw.t.Fatal(err)
	}
	nw.nodes[id] = n
	nw.slots[id] = slots
	nw.order = append(nw.order, id)
	return n
}

func (nw *network) latency(a, b PeerID) time.Duration {
	if a > b {
		a, b = b, a
	}
	if d, ok := nw.lat[[2]PeerID{a, b}]; ok {
		return d
	}
	return nw.defLat
}

func (nw *network) chunk() *chunk.Chunk {
	c := &chunk.Chunk{Broadcast: "b1", Seq: nw.seq, Wallclock: nw.now.UnixNano(), Payload: []byte(fmt.Sprintf("payload %d", nw.seq))}
	if nw.keyEvery > 0 && nw.seq%nw.keyEvery == 0 {
		c.Flags |= chunk.FlagKeyframe
	}
	c.Sign(nw.priv)
	nw.seq++
	return c
}

// publish makes the broadcaster publish one chunk.
func (nw *network) publish() {
	if err := nw.nodes[root].Publish(nw.now, nw.chunk()); err != nil {
		nw.t.Fatal(err)
	}
	nw.drain(root)
}

// drain carries out a node's Ready and returns it (valid until the node is
// called again).
func (nw *network) drain(id PeerID) Ready {
	n := nw.nodes[id]
	rd := n.Ready()
	for _, c := range rd.Deliver {
		if !c.IsInit() {
			nw.got[id] = append(nw.got[id], c.Seq)
		}
	}
	nw.events[id] = append(nw.events[id], rd.Events...)
	for _, e := range rd.Messages {
		m := e.Msg
		nw.sent[id] = append(nw.sent[id], m.Type)
		if nw.watch != nil && nw.matched == "" && nw.watch(id, e) {
			nw.matched = fmt.Sprintf("%s → %s %s", id, e.To.ID, describeMsg(m))
		}
		if (nw.sybil[id] || nw.withhold[id]) && m.Type == MsgChunk {
			// A withholder keeps its children with a heartbeat instead,
			// which says truly what it holds.
			m = &Message{Type: MsgPath, Depth: uint32(max(n.Status().Depth, 0)), Seq: m.Chunk.Seq + 1}
		}
		if nw.sybil[id] {
			m = lie(m, nw.now)
		}
		if nw.browser[id] && m.Type == MsgAttach && m.Seq == 0 && m.Lost == "" && m.Flags == 0 {
			// A page's light node asks for a welcome on its first join
			// (web/peer); a Go node never does.
			w := *m
			w.Flags = AttachWelcome
			m = &w
		}
		if nw.pad[id] && m.Type == MsgChunk {
			m = &Message{Type: MsgChunk, Chunk: m.Chunk, Excess: 64 << 10} // what the decoder would find
		}
		if m.Type == MsgChunk && nw.forge[[2]PeerID{id, e.To.ID}] {
			c := m.Chunk.Clone()
			c.Payload = []byte("forged")
			m = &Message{Type: MsgChunk, Chunk: c}
		}
		if nw.down[id] || nw.down[e.To.ID] || nw.cut[[2]PeerID{id, e.To.ID}] {
			continue
		}
		nw.inflight = append(nw.inflight, flight{at: nw.now.Add(nw.latency(id, e.To.ID)), from: id, to: e.To.ID, msg: m})
	}
	return rd
}

// step delivers what is due and ticks every node once, then moves time on.
func (nw *network) step(d time.Duration) {
	end := nw.now.Add(d)
	for {
		// Deliver due messages in order of arrival time (stable for ties).
		slices.SortStableFunc(nw.inflight, func(a, b flight) int { return a.at.Compare(b.at) })
		if len(nw.inflight) == 0 || nw.inflight[0].at.After(end) {
			break
		}
		f := nw.inflight[0]
		nw.inflight = nw.inflight[1:]
		if f.at.After(nw.now) {
			nw.now = f.at
		}
		n := nw.nodes[f.to]
		if n == nil || nw.down[f.to] {
			continue
		}
		_ = n.Step(nw.now, f.from, f.msg)
		nw.drain(f.to)
	}
	nw.now = end
	for _, id := range nw.order {
		if !nw.down[id] {
			n := nw.nodes[id]
			// Every scenario checks NextTick's promise: a Tick before it
			// does nothing (the simulator skips those Ticks).
			quiet := nw.now.Before(n.NextTick()) && !n.HasReady()
			n.Tick(nw.now)
			if quiet && n.HasReady() {
				nw.t.Fatalf("%s: Tick at %v, before its NextTick %v, did something: %+v", id, nw.now, n.NextTick(), n.ready)
			}
			nw.drain(id)
		}
	}
}

// run steps for d in 10 ms steps; with until, it stops after the step in
// which until became true and returns how long it ran.
func (nw *network) run(d time.Duration, until func() bool) time.Duration {
	for t := time.Duration(0); t < d; t += 10 * time.Millisecond {
		nw.step(10 * time.Millisecond)
		if until != nil && until() {
			return t + 10*time.Millisecond
		}
	}
	return d
}

// stream publishes a chunk every 200 ms for d.
func (nw *network) stream(d time.Duration) {
	for t := time.Duration(0); t < d; t += 200 * time.Millisecond {
		nw.publish()
		nw.run(200*time.Millisecond, nil)
	}
}

// tap runs the network for d, every live node counting a heart every
// 50 ms; it returns how many hearts were counted.
func (nw *network) tap(d time.Duration) uint64 {
	var n uint64
	for t := time.Duration(0); t < d; t += 10 * time.Millisecond {
		if t%(50*time.Millisecond) == 0 {
			for _, id := range nw.order {
				if !nw.down[id] {
					if err := nw.nodes[id].Count("hearts", 1); err != nil {
						nw.t.Fatal(err)
					}
					n++
				}
			}
		}
		nw.step(10 * time.Millisecond)
	}
	nw.tapped += n
	return n
}

// setWeb makes node i (in the order added) serve i%mod web viewers.
func (nw *network) setWeb(mod int) {
	nw.webMod = mod
	for i, id := range nw.order {
		if err := nw.nodes[id].SetGauge("web", uint64(i%mod)); err != nil {
			nw.t.Fatal(err)
		}
	}
}

// live returns how many nodes are up and the web viewers they serve.
func (nw *network) live() (nodes uint32, web uint64) {
	for i, id := range nw.order {
		if !nw.down[id] {
			nodes++
			if nw.webMod > 0 {
				web += uint64(i % nw.webMod)
			}
		}
	}
	return nodes, web
}

// countExact reports whether the broadcaster sees every live node and web
// viewer, no more.
func (nw *network) countExact() bool {
	nodes, web := nw.live()
	s := nw.status(root)
	return s.Subtree == nodes && s.Counters["web"] == web
}

// kill takes a peer off the network abruptly; reset says whether its
// neighbours see the connection go (PeerDown) or must notice silence.
func (nw *network) kill(id PeerID, reset bool) {
	nw.down[id] = true
	if !reset {
		return
	}
	for _, other := range nw.order {
		if other != id && !nw.down[other] {
			nw.nodes[other].PeerDown(nw.now, id)
			nw.drain(other)
		}
	}
}

// drop loses the messages from one peer to another that are in flight.
func (nw *network) drop(from, to PeerID) int {
	n := len(nw.inflight)
	nw.inflight = slices.DeleteFunc(nw.inflight, func(f flight) bool { return f.from == from && f.to == to })
	return n - len(nw.inflight)
}

func (nw *network) status(id PeerID) Status { return nw.nodes[id].Status() }

// checkTree checks that every live node but the root has a live parent that
// lists it as a child, and that following parents reaches the root.
func (nw *network) checkTree() {
	nw.t.Helper()
	for _, id := range nw.order {
		if id == root || nw.down[id] {
			continue
		}
		s := nw.status(id)
		if s.State != "attached" {
			nw.t.Fatalf("%s is %s, not attached", id, s.State)
		}
		if !slices.Contains(nw.status(s.Parent).Children, id) {
			nw.t.Fatalf("%s's parent %s does not list it as a child", id, s.Parent)
		}
		cur, hops := id, 0
		for cur != root {
			cur = nw.status(cur).Parent
			if hops++; hops > len(nw.order) {
				nw.t.Fatalf("loop: following parents from %s never reaches the root", id)
			}
		}
		if hops != s.Depth {
			nw.t.Fatalf("%s says depth %d, is %d hops from the root", id, s.Depth, hops)
		}
	}
}

// lie is what a sybil sends instead of m: it claims all the capacity there
// is (attach, status), the biggest subtree, the broadcaster's depth and a
// pong from the future.
func lie(m *Message, now time.Time) *Message {
	x := *m
	switch m.Type {
	case MsgAttach, MsgStatus:
		x.Capacity, x.Free = math.MaxUint32, math.MaxUint32
		if m.Type == MsgStatus {
			x.Subtree = math.MaxUint32
		}
	case MsgPong:
		x.Depth, x.Free, x.Time = 0, math.MaxUint32, now.Add(time.Hour).UnixNano()
	}
	return &x
}
