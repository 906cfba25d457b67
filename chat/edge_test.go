package chat

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBeatEdgeMachine: the broadcaster's beat carries the edge its tree
// gave (tickInput), a viewer hands the edge of the broadcaster's beat to
// its tree, and nothing else does: a beat from anyone else is refused
// before delivery, a beat without an edge (an older broadcaster's) says
// nothing, and the broadcaster does not tell its own tree.
func TestBeatEdgeMachine(t *testing.T) {
	br := newTestMachine(broadcasterPeer, nil)
	br.tick(t0, tickInput{edge: 77})
	var sent *wireBeat
	for _, b := range br.takeReady().publish {
		var e envelope
		if e.unmarshal(b) == nil && e.Beat != nil {
			sent = e.Beat
		}
	}
	if sent == nil || sent.Edge != 77 {
		t.Fatalf("the broadcaster's beat: %+v, want edge 77", sent)
	}

	cases := []struct {
		name string
		self testPeer
		from testPeer
		edge uint64
		want uint64
	}{
		{"viewer/broadcaster's beat", viewerPeer, broadcasterPeer, 77, 77},
		{"viewer/older broadcaster", viewerPeer, broadcasterPeer, 0, 0},
		{"viewer/forged beat", viewerPeer, mallory, 1 << 40, 0},
		{"broadcaster/own beat", broadcasterPeer, broadcasterPeer, 77, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMachine(tc.self, nil)
			b := env(t0, envelope{Beat: &wireBeat{Audience: 1, Edge: tc.edge}})
			e, res, _ := m.check(t0, tc.from.id, tc.from.id, b.mustEncode())
			if res == accept {
				m.deliver(t0, tc.from.id, tc.from.id, e)
			}
			if got := m.takeReady().edge; got != tc.want {
				t.Fatalf("edge for the tree %d, want %d", got, tc.want)
			}
		})
	}
}

// TestBeatCarriesLiveEdge runs a broadcaster and viewers on real hosts
// over GossipSub, with a raw attacker: every viewer's room hands its tree
// the live edge the broadcaster's tree gives, as it advances; the
// attacker's beat, pubsub-signed by its own key and claiming an edge far
// ahead, reaches no viewer's tree.
func TestBeatCarriesLiveEdge(t *testing.T) {
	var edge atomic.Uint64
	edge.Store(1000)
	var mu sync.Mutex
	heard := map[int][]uint64{} // by the room's order of joining: 0 is the broadcaster's
	joined := 0
	s := startSwarm(t, swarmOpts{viewers: 3, raws: 1, cfg: func(c *Config) {
		i := joined
		joined++
		c.Edge = edge.Load
		c.LiveEdge = func(seq uint64) {
			mu.Lock()
			heard[i] = append(heard[i], seq)
			mu.Unlock()
		}
	}})
	heardBy := func(i int, seq uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(heard[i], seq)
	}
	everyViewer := func(seq uint64) func() bool {
		return func() bool {
			for i := 1; i < len(s.members); i++ {
				if !heardBy(i, seq) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 20*time.Second, "every viewer's tree to hear edge 1000", everyViewer(1000))

	// The attacker beats with an edge far ahead; the broadcaster's edge
	// moves on. Once every viewer heard the new edge (two of its beats:
	// the attacker's had its chance to spread), none may have heard the
	// attacker's.
	s.raws[0].publish(t, envelope{Beat: &wireBeat{Audience: 1, Edge: 1 << 40}})
	edge.Store(1010)
	waitFor(t, 20*time.Second, "every viewer's tree to hear edge 1010", everyViewer(1010))
	edge.Store(1020)
	waitFor(t, 20*time.Second, "every viewer's tree to hear edge 1020", everyViewer(1020))
	mu.Lock()
	if len(heard[0]) > 0 {
		t.Errorf("the broadcaster's room told its own tree edges %v", heard[0])
	}
	for i := 1; i < len(s.members); i++ {
		for _, e := range heard[i] {
			if e != 1000 && e != 1010 && e != 1020 {
				t.Errorf("viewer %d's tree heard edge %d, which the broadcaster never said", i, e)
			}
		}
	}
	mu.Unlock()
	// The attacker's beat did arrive: a neighbour refused it.
	waitFor(t, 20*time.Second, "a room to refuse the attacker's beat", func() bool {
		for _, m := range s.members {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := m.room.Stats(ctx)
			cancel()
			if err == nil && st.Rejected["beat"] > 0 {
				return true
			}
		}
		return false
	})
}
