package p2p_test

import (
	"context"
	"testing"
	"time"

	"github.com/peerscope/peerscope/mesh/p2p"
)

// Hearts tapped and web viewers served anywhere in a tree of real hosts add
// up at the broadcaster, carried by the statuses children send anyway.
func TestHeartsAndWebViewersReachTheRoot(t *testing.T) {
	rh := newHost(t)
	rootInfo := p2p.Info(rh)
	root := startPeer(t, rh, testConfig(rootInfo, 1))
	var viewers []*peerUnderTest
	for _, s := range []int{1, 1, 0} { // a chain: root, v0, v1, v2
		viewers = append(viewers, startPeer(t, newHost(t), testConfig(rootInfo, s)))
	}
	waitFor(t, 20*time.Second, "a chain of three below the root", func() bool {
		return root.status(t).Subtree == 4
	})
	var want uint64
	for i, v := range viewers {
		v.n.SetWeb(i + 1)
		for range 10 * (i + 1) {
			v.n.AddHearts(1)
			want++
		}
	}
	root.n.AddHearts(5)
	want += 5
	hearts := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, stats, err := root.n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return stats.Hearts
	}
	waitFor(t, 20*time.Second, "every heart and web viewer counted at the root", func() bool {
		return hearts() == want && root.status(t).Web == 1+2+3
	})
	// Later statuses do not count them again: one more heart from the
	// deepest node, once it arrives, makes the total one more.
	for range 2 {
		viewers[2].n.AddHearts(1)
		want++
		waitFor(t, 20*time.Second, "the next heart", func() bool { return hearts() >= want })
		if got := hearts(); got != want {
			t.Fatalf("root counts %d hearts, want %d", got, want)
		}
	}
}
