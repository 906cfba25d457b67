package mesh

import (
	"fmt"
	"testing"
	"time"
)

// What goes up the tree with each status besides its shape: hearts (deltas)
// and the viewers served outside the tree (absolute, like Subtree).

// tap runs the network for d, every live node adding a heart every 50 ms;
// it returns how many hearts were tapped.
func (nw *network) tap(d time.Duration) uint64 {
	var n uint64
	for t := time.Duration(0); t < d; t += 10 * time.Millisecond {
		if t%(50*time.Millisecond) == 0 {
			for _, id := range nw.order {
				if !nw.down[id] {
					_ = nw.nodes[id].Count("hearts", 1)
					n++
				}
			}
		}
		nw.step(10 * time.Millisecond)
	}
	return n
}

// live returns how many nodes are up and the web viewers they serve (node i
// serves i%3 of them).
func (nw *network) live() (nodes uint32, web uint64) {
	for i, id := range nw.order {
		if !nw.down[id] {
			nodes++
			web += uint64(i % 3)
		}
	}
	return nodes, web
}

func (nw *network) setWeb() {
	for i, id := range nw.order {
		_ = nw.nodes[id].SetGauge("web", uint64(i%3))
	}
}

func TestHeartsAndWebViewersAggregateUpTheTree(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 2
	for i := range 12 {
		nw.add(PeerID(fmt.Sprintf("n%02d", i)), 2)
		if i%3 == 2 {
			nw.run(time.Second)
		}
	}
	nw.setWeb()
	var tapped uint64
	tapped += nw.tap(3 * time.Second)
	nw.run(2 * time.Second) // the last taps go up a status interval a hop
	nw.checkTree()
	if got := nw.nodes[root].Status().Counters["hearts"]; got != tapped {
		t.Fatalf("root counted %d hearts, %d were tapped", got, tapped)
	}

	// A high-capacity node joins deep and moves up (make-before-break)
	// while everyone taps: its subtree's hearts must be counted once.
	nw.add("big", 8, func(c *Config) { c.ImproveInterval = 2 * time.Second })
	nw.nodes["big"].AddCandidates(nw.now, PeerInfo{ID: "n11"})
	nw.setWeb()
	nw.latency = func(a, b PeerID) time.Duration {
		if a == "big" && b == root || a == root && b == "big" {
			return 50 * time.Millisecond
		}
		return time.Millisecond
	}
	tapped += nw.tap(10 * time.Second)
	nw.run(2 * time.Second)
	if !nw.hasEvent("big", func(e Event) bool { return e.Type == EvAttached && e.Moved }) {
		t.Fatal("big never moved: the scenario does not exercise a move")
	}
	if got := nw.nodes[root].Status().Counters["hearts"]; got != tapped {
		t.Fatalf("after a move the root counted %d hearts, %d were tapped", got, tapped)
	}

	// A relay dies abruptly after its hearts went up; its children tap
	// while they rejoin: what they tapped while detached is reported to
	// their new parents. What they sent the dead relay before they noticed
	// its silence (ParentTimeout) is lost, and only that: a status is not
	// acknowledged, and counting it again could count it twice.
	var relay PeerID
	var orphans uint32
	for _, id := range nw.order {
		if s := nw.status(id); id != root && s.Parent == root && len(s.Children) > 0 {
			relay, orphans = id, s.Subtree-1
			break
		}
	}
	if relay == "" {
		t.Fatal("no relay under the root")
	}
	nw.kill(relay, false)
	tapped += nw.tap(4 * time.Second)
	nw.run(2 * time.Second)
	nw.checkTree()
	cfg := DefaultConfig()
	lossBound := uint64(orphans) * uint64((cfg.ParentTimeout+2*cfg.StatusInterval)/(50*time.Millisecond))
	got := nw.nodes[root].Status().Counters["hearts"]
	if got > tapped || tapped-got > lossBound {
		t.Fatalf("after a relay with %d below it died the root counted %d hearts of %d tapped; want at most %d fewer, never more",
			orphans, got, tapped, lossBound)
	}
	t.Logf("relay with %d below it died: %d of %d hearts lost (bound %d)", orphans, tapped-got, tapped, lossBound)
	nodes, web := nw.live()
	if s := nw.status(root); s.Subtree != nodes || s.Counters["web"] != web {
		t.Fatalf("root sees %d nodes and %d web viewers, want %d and %d", s.Subtree, s.Counters["web"], nodes, web)
	}
}

// The count the broadcaster shows is exact within 5 s after 10 % of the
// audience leaves without a word.
func TestCountExactAfterTenPercentLeaveAbruptly(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 4
	for i := range 60 {
		nw.add(PeerID(fmt.Sprintf("v%02d", i)), i%4)
		if i%4 == 3 {
			nw.run(500 * time.Millisecond)
		}
	}
	nw.setWeb()
	nw.run(5 * time.Second)
	nw.checkTree()
	nodes, web := nw.live()
	if s := nw.status(root); s.Subtree != nodes || s.Counters["web"] != web {
		t.Fatalf("before: root sees %d nodes and %d web viewers, want %d and %d", s.Subtree, s.Counters["web"], nodes, web)
	}
	// Kill every tenth viewer, relays among them, silently: their parents
	// notice only by the missing statuses.
	killed := 0
	for i, id := range nw.order {
		if id != root && i%10 == 3 {
			nw.kill(id, false)
			killed++
		}
	}
	if killed != 6 {
		t.Fatalf("killed %d", killed)
	}
	nodes, web = nw.live()
	start := nw.now
	for {
		s := nw.status(root)
		if s.Subtree == nodes && s.Counters["web"] == web {
			break
		}
		if nw.now.Sub(start) > 5*time.Second {
			t.Fatalf("5 s after the kills the root sees %d nodes and %d web viewers, want %d and %d", s.Subtree, s.Counters["web"], nodes, web)
		}
		nw.step(10 * time.Millisecond)
	}
	t.Logf("count exact %v after the kills", nw.now.Sub(start))
	// And it stays exact.
	nw.run(3 * time.Second)
	nw.checkTree()
	if s := nw.status(root); s.Subtree != nodes || s.Counters["web"] != web {
		t.Fatalf("later the root sees %d nodes and %d web viewers, want %d and %d", s.Subtree, s.Counters["web"], nodes, web)
	}
}

// A child that claims more hearts than its subtree could tap is clamped.
func TestHeartsFromAChildAreBounded(t *testing.T) {
	nw := newNetwork(t)
	nw.add("a", 0)
	nw.run(2 * time.Second)
	nw.checkTree()
	if err := nw.nodes[root].Step(nw.now, "a", &Message{Type: MsgStatus, Subtree: 1, Counters: []CounterValue{{"hearts", 1 << 60}}}); err != nil {
		t.Fatal(err)
	}
	if got := nw.nodes[root].Status().Counters["hearts"]; got != 1000 {
		t.Fatalf("root counted %d hearts from one status of a leaf, want the bound %d", got, 1000)
	}
	// A status from a peer that is not a child counts nothing.
	if err := nw.nodes[root].Step(nw.now, "stranger", &Message{Type: MsgStatus, Subtree: 1, Counters: []CounterValue{{"hearts", 5}}}); err != nil {
		t.Fatal(err)
	}
	if got := nw.nodes[root].Status().Counters["hearts"]; got != 1000 {
		t.Fatalf("a stranger's status added hearts: %d", got)
	}
}
