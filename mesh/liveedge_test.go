package mesh

import (
	"testing"
	"time"
)

// TestLiveEdgeHint: the live edge the shell hears from a source it trusts
// (LiveEdge: the broadcaster's chat beat) is what tells a child, whose
// grandparent's edges are cut off, that its parent withholds; and a lying
// or replayed edge does no more than hearEdge allows: one beyond what
// could have been cut since the child's newest chunk, or one older than
// what it holds, never moves it from a parent that feeds it what there
// is. (An edge within that bound is believed: during a pause, one 20
// chunks ahead has the child leave its parent after 3 × WithholdTimeout,
// unbanned, as a starving one. Only the broadcaster's beat is handed in,
// and the broadcaster could as well stop its stream.) Deterministic: the
// network of machines in simulated time.
func TestLiveEdgeHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		beat bool // the child hears the true edge every 2 s
		want bool // it leaves the withholder
	}{
		{"beat", true, true},
		{"no-beat", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNetwork(t)
			nw.add(root, 1)
			nw.add("p", 2)
			nw.run(2*time.Second, nil)
			v := nw.add("v", 0)
			v.AddCandidates(nw.now, PeerInfo{ID: "p"})
			nw.run(2*time.Second, nil)
			nw.stream(2 * time.Second)
			if st := nw.status("v"); st.Parent != "p" {
				t.Fatalf("v: %+v, want it under p", st)
			}

			// The stream pauses; the beat lies, far ahead, and is
			// replayed, old. p feeds v all there is: v stays.
			for range 12 {
				held := nw.status("v").Highest + 1
				v.LiveEdge(nw.now, held+10_000) // beyond held + chunks since + the window
				v.LiveEdge(nw.now, 3)           // a beat replayed from long ago
				nw.run(500*time.Millisecond, nil)
			}
			if lost := nw.parentLost("v"); lost != nil || nw.status("v").Parent != "p" {
				t.Fatalf("a lying or replayed edge moved v: %+v, now %+v", lost, nw.status("v"))
			}

			// p withholds, and v hears no edge from its grandparent: only
			// the beat (if any) says the broadcast goes on.
			nw.withhold["p"] = true
			nw.cut[[2]PeerID{root, "v"}] = true
			for i := range 40 { // 8 s
				if tc.beat && i%10 == 0 {
					v.LiveEdge(nw.now, nw.seq)
				}
				nw.publish()
				nw.run(200*time.Millisecond, nil)
			}
			lost := nw.parentLost("v")
			if got := lost != nil && lost.Peer == "p" && lost.Loss == LossWithheld; got != tc.want {
				t.Fatalf("v left the withholder: %v (%+v), want %v; v now %+v", got, lost, tc.want, nw.status("v"))
			}
		})
	}
}

// parentLost returns a node's first EvParentLost, or nil.
func (nw *network) parentLost(id PeerID) *Event {
	for _, e := range nw.events[id] {
		if e.Type == EvParentLost {
			return &e
		}
	}
	return nil
}
