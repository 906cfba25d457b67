package mesh

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// network plays the part of the wire for scenario tests, in the manner of
// raft's test network: every message goes through a queue with a per-pair
// latency, and links can be cut or peers isolated. Time only moves when the
// test says so.
type network struct {
	t        *testing.T
	now      time.Time
	nodes    map[PeerID]*Machine
	order    []PeerID
	latency  func(a, b PeerID) time.Duration
	cut      map[[2]PeerID]bool
	down     map[PeerID]bool
	inflight []flight
	events   map[PeerID][]Event
	got      map[PeerID][]uint64 // delivered sequence numbers, in order
	priv     ed25519.PrivateKey
	pub      ed25519.PublicKey
	seq      uint64
	tamper   func(from, to PeerID, m *Message) *Message
}

type flight struct {
	at       time.Time
	from, to PeerID
	msg      *Message
}

const root = PeerID("root")

// testCounters are what the scenario tests' trees add up: taps (events,
// with chat's bound) and web viewers (a gauge).
var testCounters = []Counter{{Name: "hearts", Kind: CounterEvents, MaxPerNode: 1000}, {Name: "web", Kind: CounterGauge}}

func newNetwork(t *testing.T) *network {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.NewChaCha8([32]byte{1}))
	nw := &network{
		t:       t,
		now:     time.Unix(1_700_000_000, 0),
		nodes:   map[PeerID]*Machine{},
		latency: func(a, b PeerID) time.Duration { return time.Millisecond },
		cut:     map[[2]PeerID]bool{},
		down:    map[PeerID]bool{},
		events:  map[PeerID][]Event{},
		got:     map[PeerID][]uint64{},
		priv:    priv,
		pub:     pub,
	}
	nw.add(root, 3)
	return nw
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
	nw.order = append(nw.order, id)
	return n
}

func (nw *network) chunk() *chunk.Chunk {
	c := &chunk.Chunk{Broadcast: "b1", Seq: nw.seq, Wallclock: nw.now.UnixNano(), Payload: []byte(fmt.Sprintf("payload %d", nw.seq))}
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

func (nw *network) drain(id PeerID) {
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
		if nw.tamper != nil {
			if m = nw.tamper(id, e.To.ID, m); m == nil {
				continue
			}
		}
		if nw.down[id] || nw.down[e.To.ID] || nw.cut[[2]PeerID{id, e.To.ID}] {
			continue
		}
		nw.inflight = append(nw.inflight, flight{at: nw.now.Add(nw.latency(id, e.To.ID)), from: id, to: e.To.ID, msg: m})
	}
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

// run steps for d in 10 ms steps.
func (nw *network) run(d time.Duration) {
	for t := time.Duration(0); t < d; t += 10 * time.Millisecond {
		nw.step(10 * time.Millisecond)
	}
}

// stream publishes a chunk every 200 ms for d.
func (nw *network) stream(d time.Duration) {
	for t := time.Duration(0); t < d; t += 200 * time.Millisecond {
		nw.publish()
		nw.run(200 * time.Millisecond)
	}
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

// checkComplete checks that a node got every sequence number from first to
// last exactly once.
func (nw *network) checkComplete(id PeerID, first, last uint64) {
	nw.t.Helper()
	got := slices.Clone(nw.got[id])
	slices.Sort(got)
	if len(got) != len(slices.Compact(slices.Clone(got))) {
		nw.t.Fatalf("%s got duplicates: %v", id, nw.got[id])
	}
	for s := first; s <= last; s++ {
		if _, ok := slices.BinarySearch(got, s); !ok {
			nw.t.Fatalf("%s is missing seq %d (got %v)", id, s, got)
		}
	}
}

func (nw *network) hasEvent(id PeerID, f func(Event) bool) bool {
	return slices.ContainsFunc(nw.events[id], f)
}
