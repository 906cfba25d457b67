package p2p_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// Counters — hearts tapped (events) and web viewers served (a gauge)
// anywhere in a tree of real hosts — add up at the broadcaster, carried by
// the statuses children send anyway. A name the tree does not carry is
// refused.
func TestHeartsAndWebViewersReachTheRoot(t *testing.T) {
	rh := newHost(t)
	rootInfo := p2p.Info(rh)
	root := startPeer(t, rh, testConfig(rootInfo, 1))
	var viewers []*peerUnderTest
	for _, s := range []int{1, 1, 0} { // a chain: root, v0, v1, v2
		viewers = append(viewers, startPeer(t, newHost(t), testConfig(rootInfo, s)))
	}
	if err := root.n.Count("web", 1); !errors.Is(err, mesh.ErrUnknownCounter) {
		t.Fatalf("counting a gauge: %v, want mesh.ErrUnknownCounter", err)
	}
	if err := root.n.SetGauge("likes", 1); !errors.Is(err, mesh.ErrUnknownCounter) {
		t.Fatalf("an unknown gauge: %v, want mesh.ErrUnknownCounter", err)
	}
	waitFor(t, 20*time.Second, "a chain of three below the root", func() bool {
		return root.status(t).Subtree == 4
	})
	var want uint64
	for i, v := range viewers {
		if err := v.n.SetGauge("web", uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		for range 10 * (i + 1) {
			if err := v.n.Count("hearts", 1); err != nil {
				t.Fatal(err)
			}
			want++
		}
	}
	if err := root.n.Count("hearts", 5); err != nil {
		t.Fatal(err)
	}
	want += 5
	hearts := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, _, err := root.n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Counters["hearts"]
	}
	waitFor(t, 20*time.Second, "every heart and web viewer counted at the root", func() bool {
		return hearts() == want && root.status(t).Counters["web"] == 1+2+3
	})
	// Later statuses do not count them again: one more heart from the
	// deepest node, once it arrives, makes the total one more.
	for range 2 {
		if err := viewers[2].n.Count("hearts", 1); err != nil {
			t.Fatal(err)
		}
		want++
		waitFor(t, 20*time.Second, "the next heart", func() bool { return hearts() >= want })
		if got := hearts(); got != want {
			t.Fatalf("root counts %d hearts, want %d", got, want)
		}
	}
}
