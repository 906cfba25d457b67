package p2p_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// TestWithholdingParent builds a tree over real hosts in which one relay
// keeps its place but forwards no chunk: instead of each chunk it sends a
// heartbeat, which keeps a child attached (and says, truly, what the relay
// holds). A viewer that joins under it must notice, leave it, get under the
// honest relay that comes and get the video: every chunk from its first on.
func TestWithholdingParent(t *testing.T) {
	// The broadcaster's only slot goes to the withholder, so a viewer can
	// only go under it; an honest relay comes later.
	rh := newHost(t)
	rootInfo := p2p.Info(rh)
	root := startPeer(t, rh, testConfig(rootInfo, 1))
	bad := startPeer(t, newHost(t), testConfig(rootInfo, 2))
	waitFor(t, 20*time.Second, "the withholder under the broadcaster", func() bool {
		return bad.status(t).Parent == rootInfo.ID
	})
	bad.n.SetTamper(func(_ mesh.PeerID, m *mesh.Message) *mesh.Message {
		if m.Type != mesh.MsgChunk {
			return m
		}
		return &mesh.Message{Type: mesh.MsgPath, Depth: 1, Seq: m.Chunk.Seq + 1}
	})
	pub := publish(t, root, 50*time.Millisecond)
	waitFor(t, 20*time.Second, "the stream to start", func() bool { return pub.published() >= 10 })

	start := time.Now()
	viewer := startPeer(t, newHost(t), testConfig(rootInfo, 0))
	waitFor(t, 20*time.Second, "the viewer to attach under the withholder first", func() bool {
		for _, e := range viewer.events() {
			if e.Type == mesh.EvAttached && e.Peer == bad.n.Info().ID {
				return true
			}
		}
		return false
	})
	good := startPeer(t, newHost(t), testConfig(rootInfo, 2))
	defer func() {
		if t.Failed() {
			for _, p := range []*peerUnderTest{root, good, bad, viewer} {
				t.Logf("%s: %+v", shortPeer(p.n.Info().ID), p.status(t))
			}
		}
	}()
	waitFor(t, 20*time.Second, "the viewer to leave the withholder for the honest relay", func() bool {
		st := viewer.status(t)
		return st.State == "attached" && st.Parent == good.n.Info().ID
	})
	t.Logf("the viewer was under the honest relay %v after it started", time.Since(start).Round(time.Millisecond))
	for _, e := range viewer.events() {
		t.Logf("viewer event: %s %s loss=%s", e.Type, shortPeer(e.Peer), e.Loss)
	}

	atMove := pub.published()
	waitFor(t, 20*time.Second, "the stream to go on", func() bool { return pub.published() >= atMove+20 })
	last := pub.halt()
	waitFor(t, 20*time.Second, "every chunk from the viewer's first at the viewer", func() bool {
		return viewer.has(last - 1)
	})
	first := last
	for s := uint64(0); s < last; s++ {
		if viewer.has(s) {
			first = s
			break
		}
	}
	for s := first; s < last; s++ {
		if !viewer.has(s) {
			t.Errorf("chunk %d missing (the viewer's first was %d, the last %d)", s, first, last-1)
		}
	}
}

func shortPeer(id mesh.PeerID) string {
	if len(id) > 8 {
		return string(id[len(id)-8:])
	}
	return string(id)
}

// TestOldAndNewRefuseEachOther: a 1.1.0 node (which knows no receipts, no
// edges, no withheld flag) and a 1.2.0 node do not talk: a stream of the
// old protocol to a new node, or of the new one to an old node, is refused
// at negotiation, with an error that says so, and an old joiner never gets
// into a new tree.
func TestOldAndNewRefuseEachOther(t *testing.T) {
	const old = protocol.ID("/peerscope/mesh/1.1.0")
	if p2p.ProtocolID == old {
		t.Fatalf("ProtocolID is still %s", old)
	}
	nh, oh := newHost(t), newHost(t)
	newRoot := startPeer(t, nh, testConfig(p2p.Info(nh), 2))
	oldRoot := startPeerWith(t, oh, testConfig(p2p.Info(oh), 2), p2p.WithProtocol(old))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		from, to host.Host
		proto    protocol.ID
	}{{oh, nh, old}, {nh, oh, p2p.ProtocolID}} {
		c.from.Peerstore().AddAddrs(c.to.ID(), c.to.Addrs(), time.Hour)
		s, err := c.from.NewStream(ctx, c.to.ID(), c.proto)
		if err == nil {
			_ = s.Reset()
			t.Fatalf("a %s stream was accepted by a node that does not speak it", c.proto)
		}
		if !strings.Contains(err.Error(), "protocol") {
			t.Errorf("%s refused with %q: want an error that names the protocol negotiation", c.proto, err)
		}
	}
	// An old joiner of the new tree: its attach cannot be sent; it stays
	// out while a new joiner gets in.
	oldViewer := startPeerWith(t, newHost(t), testConfig(p2p.Info(nh), 0), p2p.WithProtocol(old))
	newViewer := startPeer(t, newHost(t), testConfig(p2p.Info(nh), 0))
	waitFor(t, 20*time.Second, "the new joiner in the new tree", func() bool {
		return newViewer.status(t).State == "attached"
	})
	if ch := newRoot.status(t).Children; len(ch) != 1 || ch[0] != newViewer.n.Info().ID {
		t.Errorf("the new broadcaster's children are %v, want only the new joiner", ch)
	}
	if st := oldViewer.status(t); st.State == "attached" {
		t.Errorf("the old joiner got into the new tree: %+v", st)
	}
	_ = oldRoot
}

// TestWithholderLeftOnTheBeatsEdge: a relay feeds a viewer for a while,
// then forwards no chunk, only heartbeats that say (truly) what it holds.
// The viewer's other sources of the live edge are cut: the broadcaster,
// its grandparent, answers its receipts with no edge (the viewer is at
// depth 2, so it pings nobody above). What it does hear is the
// broadcaster's chat beat, as the node passes it on (Tree.LiveEdge), every
// 2 s. With that alone it takes its parent for withholding, leaves it and
// gets the stream from the broadcaster again. Without the beat's edge it
// stays under the withholder: nothing else tells it the broadcast went on.
func TestWithholderLeftOnTheBeatsEdge(t *testing.T) {
	rh := newHost(t)
	rootInfo := p2p.Info(rh)
	noEdge := p2p.WithSendFilter(func(_ mesh.PeerID, m *mesh.Message) (*mesh.Message, []byte) {
		if m.Type == mesh.MsgEdge {
			return nil, nil
		}
		return m, nil
	})
	root := startPeerWith(t, rh, testConfig(rootInfo, 1), noEdge)
	bad := startPeer(t, newHost(t), testConfig(rootInfo, 2))
	waitFor(t, 20*time.Second, "the relay under the broadcaster", func() bool {
		return bad.status(t).Parent == rootInfo.ID
	})
	pub := publish(t, root, 50*time.Millisecond)
	viewer := startPeer(t, newHost(t), testConfig(rootInfo, 0))
	waitFor(t, 20*time.Second, "the viewer fed under the relay", func() bool {
		st := viewer.status(t)
		return st.Parent == bad.n.Info().ID && viewer.count() >= 10
	})
	// Room at the broadcaster for the viewer once it leaves the relay.
	if err := root.n.SetSlots(2); err != nil {
		t.Fatal(err)
	}
	var withholding atomic.Bool
	bad.n.SetTamper(func(_ mesh.PeerID, m *mesh.Message) *mesh.Message {
		if m.Type != mesh.MsgChunk || !withholding.Load() {
			return m
		}
		return &mesh.Message{Type: mesh.MsgPath, Depth: 1, Seq: m.Chunk.Seq + 1}
	})
	withholding.Store(true)
	start := time.Now()

	// The chat beat: the broadcaster's edge, every 2 s, as its room reads
	// it from its tree and the viewer's room hands it to its tree.
	stop := make(chan struct{})
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, _, err := root.n.Status(ctx)
			cancel()
			if err == nil && st.HaveAny {
				viewer.n.LiveEdge(st.Highest + 1)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	defer func() { close(stop); <-beats }()
	defer func() {
		if t.Failed() {
			for _, p := range []*peerUnderTest{root, bad, viewer} {
				t.Logf("%s: %+v", shortPeer(p.n.Info().ID), p.status(t))
			}
		}
	}()
	waitFor(t, 20*time.Second, "the viewer to leave the relay for withholding", func() bool {
		for _, e := range viewer.events() {
			if e.Type == mesh.EvParentLost && e.Peer == bad.n.Info().ID && e.Loss == mesh.LossWithheld {
				return true
			}
		}
		return false
	})
	t.Logf("the viewer left the withholder %v after it began", time.Since(start).Round(time.Millisecond))
	at := pub.published()
	waitFor(t, 20*time.Second, "the viewer fed again", func() bool {
		st := viewer.status(t)
		return st.State == "attached" && st.Parent != bad.n.Info().ID && viewer.has(at+10)
	})
	pub.halt()
}
