package chat

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// TestBeatEdgeLeavesWithholder is issue 11 end to end, on real hosts: a
// broadcaster, a relay and a viewer, each a relay tree (mesh/p2p) and the
// broadcaster and the viewer a chat room on GossipSub, tied by TreeLink as
// the node ties them. The relay feeds the viewer, then forwards no chunk,
// only heartbeats that say what it holds; the broadcaster's tree answers
// no receipt with an edge, so the viewer (at depth 2, pinging nobody
// above) hears the broadcast go on from the broadcaster's beat alone. It
// takes the relay for withholding, leaves it and is fed again.
func TestBeatEdgeLeavesWithholder(t *testing.T) {
	rootH, badH, viewerH := newHost(t), newHost(t), newHost(t)
	rootInfo := p2p.Info(rootH)
	const broadcast = "beat-edge-test"
	treeConfig := func(slots int) mesh.Config {
		cfg := mesh.DefaultConfig()
		cfg.Root, cfg.Broadcast, cfg.Slots = rootInfo, broadcast, slots
		cfg.ChunkInterval = 50 * time.Millisecond
		cfg.Counters = TreeCounters()
		return cfg
	}
	var mu sync.Mutex
	var viewerEvents []mesh.Event
	var viewerGot uint64 // chunks delivered
	var withholding atomic.Bool
	startTree := func(h host.Host, slots int, opts ...p2p.Option) *p2p.Tree {
		tr, err := p2p.New(h, treeConfig(slots), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	rootTree := startTree(rootH, 1, p2p.WithSendFilter(func(_ mesh.PeerID, m *mesh.Message) (*mesh.Message, []byte) {
		if m.Type == mesh.MsgEdge {
			return nil, nil // the grandparent's edges are cut off
		}
		return m, nil
	}))
	badTree := startTree(badH, 2, p2p.WithSendFilter(func(_ mesh.PeerID, m *mesh.Message) (*mesh.Message, []byte) {
		if m.Type == mesh.MsgChunk && withholding.Load() {
			return &mesh.Message{Type: mesh.MsgPath, Depth: 1, Seq: m.Chunk.Seq + 1}, nil
		}
		return m, nil
	}))
	waitFor(t, 20*time.Second, "the relay under the broadcaster", func() bool {
		st, _, err := badTree.Status(context.Background())
		return err == nil && st.Parent == rootInfo.ID
	})

	// The chat rooms, tied to their trees as the node ties them.
	connect(t, viewerH, rootH)
	rootLink := NewTreeLink(rootTree)
	join := func(h host.Host, link *TreeLink) {
		cfg := Config{Broadcast: broadcast, Broadcaster: rootH.ID()}
		link.Configure(&cfg)
		room, err := Join(context.Background(), newPubSub(t, h), h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = room.Close() })
	}
	join(rootH, rootLink)

	// The broadcaster's node: chunks every 50 ms, and its link refreshed
	// every 500 ms (node's fanOutChat).
	signer, err := p2p.HostSigner(rootH)
	if err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for seq := uint64(0); ; seq++ {
			c := &chunk.Chunk{Broadcast: broadcast, Seq: seq, Wallclock: time.Now().UnixNano(),
				Flags: chunk.FlagKeyframe, Payload: bytes.Repeat([]byte{byte(seq)}, 1000)}
			signer.Sign(c)
			if err := rootTree.Publish(context.Background(), c); err != nil {
				return
			}
			if seq%10 == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = rootLink.Refresh(ctx)
				cancel()
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-stopped })

	viewerTree := startTree(viewerH, 0,
		p2p.WithEvents(func(e mesh.Event) { mu.Lock(); viewerEvents = append(viewerEvents, e); mu.Unlock() }),
		p2p.WithDeliver(func(*chunk.Chunk) { mu.Lock(); viewerGot++; mu.Unlock() }))
	join(viewerH, NewTreeLink(viewerTree))
	fed := func() uint64 { mu.Lock(); defer mu.Unlock(); return viewerGot }
	waitFor(t, 20*time.Second, "the viewer fed under the relay", func() bool {
		st, _, err := viewerTree.Status(context.Background())
		return err == nil && st.Parent == badTree.Info().ID && fed() >= 10
	})
	// Room at the broadcaster for the viewer once it leaves the relay.
	if err := rootTree.SetSlots(2); err != nil {
		t.Fatal(err)
	}
	withholding.Store(true)
	start := time.Now()
	waitFor(t, 30*time.Second, "the viewer to leave the relay for withholding", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range viewerEvents {
			if e.Type == mesh.EvParentLost && e.Peer == badTree.Info().ID && e.Loss == mesh.LossWithheld {
				return true
			}
		}
		return false
	})
	t.Logf("the viewer left the withholder %v after it began", time.Since(start).Round(time.Millisecond))
	at := fed()
	waitFor(t, 20*time.Second, "the viewer fed again", func() bool {
		st, _, err := viewerTree.Status(context.Background())
		return err == nil && st.State == "attached" && st.Parent != badTree.Info().ID && fed() >= at+10
	})
}
