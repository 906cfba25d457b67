package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/mesh/stripe"
	"github.com/peerscope/peerscope/node"
)

// TestStripedSampleThroughTheTrees streams the sample clip as a striped
// broadcast (two fragments and one parity per chunk, three trees): the
// viewers learn the striping from the announcement, join the three trees,
// and ffprobe reads a viewer's LL-HLS, made of chunks assembled from
// fragments, to the end: every packet, timestamps that only go forward. A
// node that asks for the broadcast's one tree, as a node before striping
// does, is refused by protocol negotiation: there is none. The viewers keep
// the assembled chunks for the replay.
func TestStripedSampleThroughTheTrees(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	testutil.NeedTool(t, "ffprobe", "ffmpeg")
	// Six slots at the broadcaster are twelve half-stream slots, four in
	// each tree: room for the three viewers whichever stripes their random
	// peer IDs fall in (mesh/stripe's tests relay through fixed ones).
	root := newNode(t, node.Config{Slots: 6})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "striped", Source: gated{gate, sampleSource(t)}, Stripes: 2, Parity: 1})
	if err != nil {
		t.Fatal(err)
	}
	var viewers []*node.Broadcast
	var nodes []*node.Node
	for _, slots := range []int{2, node.NoRelay, node.NoRelay} {
		vn := newNode(t, node.Config{Slots: slots})
		nodes = append(nodes, vn)
		w, err := vn.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		if a := w.Announcement(); a.Stripes != 2 || a.Parity != 1 {
			t.Fatalf("the viewer read striping %d+%d, want 2+1", a.Stripes, a.Parity)
		}
		viewers = append(viewers, w)
	}
	waitFor(t, 30*time.Second, "every viewer in the tree", func() bool {
		for _, v := range viewers {
			if depth(t, v) < 1 {
				return false
			}
		}
		return true
	})

	// A node before striping asks for the one tree: refused at once.
	old := testutil.TCPHost(t)
	rootInfo := peer.AddrInfo{ID: root.ID(), Addrs: root.Addrs()}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := old.Connect(ctx, rootInfo); err != nil {
		t.Fatal(err)
	}
	one := p2p.ProtocolID + "/" + protocol.ID(b.ID())
	if s, err := old.NewStream(ctx, root.ID(), one); err == nil {
		s.Reset()
		t.Fatal("the striped broadcast's broadcaster speaks the one-tree protocol")
	} else if !strings.Contains(err.Error(), "protocols not supported") {
		t.Fatalf("the one-tree protocol: %v, want a negotiation refusal", err)
	}
	s, err := old.NewStream(ctx, root.ID(), stripe.Protocol(one, 2))
	if err != nil {
		t.Fatalf("stripe 2's tree: %v", err)
	}
	s.Reset()

	close(gate)
	probeLive(t, viewers[2].URLs().HLS)
	for _, w := range append(viewers, b) {
		select {
		case <-w.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the end never came", w.URLs().Player)
		}
	}
	// The replay: every viewer keeps the chunks assembled (whole, their
	// signature checked again by cutting them), as many as the broadcaster.
	waitFor(t, 20*time.Second, "the viewers to keep every chunk for the replay", func() bool {
		want := len(root.ReplayStore().Held(b.ID()))
		for _, n := range nodes {
			if len(n.ReplayStore().Held(b.ID())) != want {
				return false
			}
		}
		return want > 10
	})
}

// TestStripedRefused: a striping the chunks cannot carry, or a private
// broadcast striped, is a configuration error.
func TestStripedRefused(t *testing.T) {
	n := newNode(t, node.Config{})
	for _, cfg := range []node.LiveConfig{
		{WHIP: true, Stripes: 12, Parity: 5},
		{WHIP: true, Stripes: -1},
		{WHIP: true, Parity: 2},
		{WHIP: true, Stripes: 2, Parity: 1, Private: &node.Audience{}},
	} {
		if _, err := n.GoLive(t.Context(), cfg); err == nil {
			t.Errorf("%d+%d (private %v) accepted", cfg.Stripes, cfg.Parity, cfg.Private != nil)
		}
	}
}
