package sim

import (
	"context"
	"testing"
	"time"
)

// runStripedFor builds a striped run, lets change alter it before it
// starts, and runs it to its end.
func runStripedFor(t *testing.T, cfg Config, change func(*striped)) *striped {
	t.Helper()
	st, err := newStriped(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(st)
	}
	if err := st.runUntil(t.Context(), cfg.Duration); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStripesShareViewers: the trees of one run are the same viewers,
// arriving, sitting, leaving and killed alike, while each tree's network
// (its machines' draws, loss) is its own.
func TestStripesShareViewers(t *testing.T) {
	cfg := small(200, 40*time.Second, 0.3, 3)
	cfg.Stripes = 3
	cfg.KillAt, cfg.KillFraction = 30*time.Second, 0.3
	st := runStripedFor(t, cfg, nil)
	a := st.trees[0]
	if a.m.leaves < 60 || a.m.killed == 0 {
		t.Fatalf("%d leaves, %d killed: want churn and a kill to compare", a.m.leaves, a.m.killed)
	}
	relaysIn := make([]int, len(st.trees))
	for k, b := range st.trees {
		if len(b.nodes) != len(a.nodes) || b.m.leaves != a.m.leaves || b.m.killed != a.m.killed {
			t.Fatalf("tree %d: %d nodes, %d leaves, %d killed; tree 0: %d, %d, %d", k, len(b.nodes), b.m.leaves, b.m.killed, len(a.nodes), a.m.leaves, a.m.killed)
		}
		for i := range a.nodes {
			x, y := &a.nodes[i], &b.nodes[i]
			if x.arrived != y.arrived || x.left != y.left || x.class != y.class || (i != root && x.upload != y.upload) || a.pos[i] != b.pos[i] {
				t.Fatalf("viewer %d differs between trees 0 and %d: arrived %d/%d left %d/%d class %d/%d", i, k, x.arrived, y.arrived, x.left, y.left, x.class, y.class)
			}
			if y.slots > 0 && i != root {
				relaysIn[k]++
				for j, c := range st.trees {
					if j != k && c.nodes[i].slots > 0 {
						t.Fatalf("viewer %d has slots in trees %d and %d: want one tree each", i, k, j)
					}
				}
			}
		}
	}
	for k, n := range relaysIn {
		if n == 0 {
			t.Errorf("tree %d has no relaying viewer: %v", k, relaysIn)
		}
	}
	if a.m.lostMsgs == st.trees[1].m.lostMsgs && a.m.msgEvents == st.trees[1].m.msgEvents {
		t.Errorf("trees 0 and 1 ran the same network draws (%d losses, %d messages): want each its own", a.m.lostMsgs, a.m.msgEvents)
	}
}

// TestStripesPlayOnAnyKOfKPlusOne: a viewer plays a chunk once any
// Stripes of its Stripes+Parity fragments are in. With one whole tree's
// fragments lost (here dropped before they reach the players), every
// chunk still plays; with two, none does (with two parity fragments,
// three).
func TestStripesPlayOnAnyKOfKPlusOne(t *testing.T) {
	cfg := small(100, 30*time.Second, 0, 5)
	cfg.Stripes = 3
	drop := func(trees ...int) func(*striped) {
		return func(st *striped) {
			for _, k := range trees {
				st.trees[k].fragment = func(int32, uint64, int64) {}
			}
		}
	}
	all := runStripedFor(t, cfg, nil).report()
	one := runStripedFor(t, cfg, drop(2)).report()
	two := runStripedFor(t, cfg, drop(0, 3)).report()
	if all.Continuity < 0.99 || one.Continuity < 0.99 {
		t.Fatalf("continuity %v with every tree, %v without tree 2: want both ≥ 0.99", all.Continuity, one.Continuity)
	}
	if n := two.Extra["never_played"]; n != float64(cfg.Nodes) {
		t.Fatalf("without two trees %v of %d viewers never played (continuity %v): want all", n, cfg.Nodes, two.Continuity)
	}
	// The parity makes up a lost fragment, and waits for one more: the
	// chunk is held at its third fragment of four either way.
	if one.LatencyMs.P50 < all.LatencyMs.P50 {
		t.Errorf("latency p50 %v ms without a tree, %v with all: losing one cannot make chunks come sooner", one.LatencyMs.P50, all.LatencyMs.P50)
	}
	// Two parity fragments make up two lost trees, not three.
	cfg.Parity = 2
	if r := runStripedFor(t, cfg, drop(0, 3)).report(); r.Continuity < 0.99 {
		t.Errorf("parity 2, two trees gone: continuity %v, want ≥ 0.99", r.Continuity)
	}
	if r := runStripedFor(t, cfg, drop(0, 2, 4)).report(); r.Extra["never_played"] != float64(cfg.Nodes) {
		t.Errorf("parity 2, three trees gone: %v of %d viewers never played, want all", r.Extra["never_played"], cfg.Nodes)
	}
}

// TestStripesDeterministic: a seed gives one striped run, and the report
// has the whole stream's bitrate, the broadcaster's upload over the whole
// stream and each tree's depth.
func TestStripesDeterministic(t *testing.T) {
	cfg := small(150, 30*time.Second, 0.2, 9)
	cfg.Stripes = 4
	a, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if comparable(a) != comparable(b) {
		t.Fatalf("same seed, different striped reports:\n%s\n%s", comparable(a), comparable(b))
	}
	if a.BitrateBps != cfg.Bitrate {
		t.Errorf("bitrate %d: want the stream's, %d", a.BitrateBps, cfg.Bitrate)
	}
	// Three slots of the whole stream are twelve of a quarter of it, dealt
	// 3, 3, 2, 2, 2 to the five trees: three times the stream, as one tree.
	if r := a.SourceUploadRatio; r < 2.8 || r > 3.3 {
		t.Errorf("source upload %v x stream: want about 3", r)
	}
	depth := 0.0
	for k := range 5 {
		d, ok := a.Extra["stripe"+string(rune('0'+k))+"_max_depth"]
		if !ok || d < 1 {
			t.Fatalf("stripe%d_max_depth = %v, %v: want each tree's depth", k, d, ok)
		}
		depth = max(depth, d)
	}
	if float64(a.MaxDepth) != depth {
		t.Errorf("max_depth %d: want the deepest tree's, %v", a.MaxDepth, depth)
	}
	if a.Continuity < 0.99 {
		t.Errorf("continuity %v under light churn: want ≥ 0.99", a.Continuity)
	}
}

func TestStripesInvalid(t *testing.T) {
	// Parity means nothing without stripes (the command passes its
	// default either way).
	if _, err := Run(context.Background(), Config{Nodes: 10, Duration: time.Second, Parity: 1}); err != nil {
		t.Errorf("no stripes, parity 1: %v", err)
	}
	for _, c := range []Config{
		{Nodes: 10, Stripes: maxStripes + 1},
		{Nodes: 10, Stripes: 3, Sybils: 1},
		{Nodes: 10, Stripes: 3, Forward: ForwardCut},
		{Nodes: 10, Stripes: 2, Parity: 3},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("stripes %d, parity %d, sybils %d, forward %v: want refused", c.Stripes, c.Parity, c.Sybils, c.Forward)
		}
	}
}
