package sim

import (
	"fmt"

	"github.com/peerscope/peerscope/mesh"
)

// Peer is a snapshot of one node present in the simulation, taken from the
// node itself (mesh.Machine.Status), not from the simulator's bookkeeping.
type Peer struct {
	ID     mesh.PeerID
	Index  int // position in the simulation; 0 is the broadcaster
	Slots  int
	Class  string // "source" for the broadcaster
	Status mesh.Status
}

// Peers returns a snapshot of every node present, the broadcaster first.
// It allocates; it is for tests and diagnosis, not for the hot path.
func (s *Sim) Peers() []Peer {
	out := make([]Peer, 0, len(s.present)+1)
	add := func(i int32) {
		nd := &s.nodes[i]
		cls := "source"
		if i != root {
			cls = s.cfg.Classes[nd.class].Name
		}
		out = append(out, Peer{ID: nd.info.ID, Index: int(i), Slots: int(nd.slots), Class: cls, Status: nd.n.Status()})
	}
	add(root)
	for _, i := range s.present {
		add(i)
	}
	return out
}

// TreeCheck is what CheckTree found.
type TreeCheck struct {
	Present   int // viewers present
	Connected int // viewers whose parent chain reaches the broadcaster
	MaxDepth  int // longest such chain
}

// CheckTree checks the invariants of the tree as the nodes themselves see
// it: no node has more children than slots, following parents from any
// node ends within len(nodes) steps (at the broadcaster, or at a node that
// is not attached: never in a loop), and the simulator's own picture of
// parents (from events) matches the nodes'.
func (s *Sim) CheckTree() (TreeCheck, error) {
	peers := s.Peers()
	var tc TreeCheck
	parent := make(map[mesh.PeerID]mesh.PeerID, len(peers))
	for _, p := range peers {
		if len(p.Status.Children)-len(p.Status.Handing) > p.Slots {
			return tc, fmt.Errorf("%s has %d children for %d slots", p.ID, len(p.Status.Children)-len(p.Status.Handing), p.Slots)
		}
		if p.Index == root {
			continue
		}
		parent[p.ID] = p.Status.Parent
		want := mesh.PeerID("")
		if j := s.nodes[p.Index].parent; j >= 0 {
			want = s.nodes[j].info.ID
		}
		if p.Status.Parent != want {
			return tc, fmt.Errorf("%s: node says parent %q, its events said %q", p.ID, p.Status.Parent, want)
		}
	}
	rootID := s.nodes[root].info.ID
	for _, p := range peers {
		if p.Index == root {
			continue
		}
		tc.Present++
		id, steps := p.ID, 0
		for id != rootID && id != "" {
			if steps > len(s.nodes) {
				return tc, fmt.Errorf("%s: parent chain does not end: a loop", p.ID)
			}
			id = parent[id] // a node that left or is not attached ends the chain
			steps++
		}
		if id == rootID {
			tc.Connected++
			tc.MaxDepth = max(tc.MaxDepth, steps)
		}
	}
	return tc, nil
}
