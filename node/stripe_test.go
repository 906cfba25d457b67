package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/audience/mailbox"
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

// TestStripedRefused: a striping the chunks cannot carry is a
// configuration error.
func TestStripedRefused(t *testing.T) {
	n := newNode(t, node.Config{})
	for _, cfg := range []node.LiveConfig{
		{WHIP: true, Stripes: 12, Parity: 5},
		{WHIP: true, Stripes: -1},
		{WHIP: true, Parity: 2},
	} {
		if _, err := n.GoLive(t.Context(), cfg); err == nil {
			t.Errorf("%d+%d accepted", cfg.Stripes, cfg.Parity)
		}
	}
}

// TestPrivateStriped: a private broadcast striped 2+1, rekeying every 2 s:
// the fragments are cut from the sealed payload, the members assemble and
// open every part; a tree node with no token on one stripe's protocol gets
// no parent and no fragment while they play.
func TestPrivateStriped(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice, bob := privateNode(t, mb, 2), privateNode(t, mb, node.NoRelay)
	members := []node.Member{memberOf("twitter:1", alice), memberOf("twitter:2", bob)}
	p := &privateParty{mb: mb, root: privateNode(t, mb, 3), gate: make(chan struct{})}
	b, err := p.root.GoLive(t.Context(), node.LiveConfig{Title: "private striped", Source: gated{p.gate, sampleSource(t)},
		Stripes: 2, Parity: 1, Private: &node.Audience{Members: members, RekeyEvery: 2 * time.Second, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var ws []*node.Broadcast
	for _, n := range []*node.Node{alice, bob} {
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		if !w.Private() || w.Announcement().Stripes != 2 {
			t.Fatalf("private %v, striped %d", w.Private(), w.Announcement().Stripes)
		}
		waitFor(t, 30*time.Second, "member in the tree", func() bool { return depth(t, w) >= 1 })
		ws = append(ws, w)
	}

	// The attacker: a tree node on stripe 1's protocol, no token.
	att, got := attacker(t, p.root, b.ID(), stripe.Protocol(p2p.ProtocolID+"/"+protocol.ID(b.ID()), 1))

	first := b.Epoch()
	close(p.gate)
	probeLive(t, ws[1].URLs().HLS)
	playedThrough(t, b, ws, first)
	st, _, err := att.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Parent != "" || len(got) != 0 {
		t.Fatalf("the attacker is in stripe 1's tree: parent %q, %d fragments", st.Parent, len(got))
	}
}
