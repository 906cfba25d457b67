package bench

import (
	"context"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

const gossipTopic = "/peerscope/bench/chunks"

// gossipSwarm floods the same signed chunks over one GossipSub topic with
// the default parameters (D=6). Each viewer connects to GossipPeers random
// present nodes (the broadcaster among them, with the same chance as any
// viewer), as a viewer would with the few peers a directory or the DHT
// hands it; the broadcaster is subscribed too, so it is in the mesh. Every
// node validates a chunk's signature before GossipSub forwards it.
type gossipSwarm struct {
	r    *run
	root *viewer

	mu      sync.Mutex
	cancels map[*viewer]context.CancelFunc
	wg      sync.WaitGroup
	topic   *pubsub.Topic
	rootCtx context.CancelFunc
}

// gossipTracer counts one node's bytes from the RPCs GossipSub sends.
type gossipTracer struct {
	r *run
	v *viewer
}

func (g gossipTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	chunk := 0
	for _, m := range rpc.Publish {
		chunk += len(m.Data)
	}
	g.v.chunkSent.Add(uint64(chunk))
	g.v.ctrlSent.Add(uint64(proto.Size(&rpc.RPC) - chunk))
}

func (g gossipTracer) DuplicateMessage(msg *pubsub.Message) {
	if g.v != g.r.root {
		g.v.dupBytes.Add(uint64(len(msg.Data)))
	}
}

func (gossipTracer) AddPeer(peer.ID, protocol.ID)             {}
func (gossipTracer) RemovePeer(peer.ID)                       {}
func (gossipTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (gossipTracer) OnClosedOutboundStream(peer.ID)           {}
func (gossipTracer) Join(string)                              {}
func (gossipTracer) Leave(string)                             {}
func (gossipTracer) Graft(peer.ID, string)                    {}
func (gossipTracer) Prune(peer.ID, string)                    {}
func (gossipTracer) ValidateMessage(*pubsub.Message)          {}
func (gossipTracer) DeliverMessage(*pubsub.Message)           {}
func (gossipTracer) RejectMessage(*pubsub.Message, string)    {}
func (gossipTracer) ThrottlePeer(peer.ID)                     {}
func (gossipTracer) RecvRPC(*pubsub.RPC)                      {}
func (gossipTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (gossipTracer) UndeliverableMessage(*pubsub.Message)     {}

var _ pubsub.RawTracer = gossipTracer{}

func (g *gossipSwarm) join(ctx context.Context, v *viewer) (*pubsub.Topic, *pubsub.Subscription, error) {
	ps, err := pubsub.NewGossipSub(ctx, v.h, pubsub.WithRawTracer(gossipTracer{g.r, v}))
	if err != nil {
		return nil, nil, err
	}
	key := g.r.key
	err = ps.RegisterTopicValidator(gossipTopic, func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		var m mesh.Message
		if err := m.Unmarshal(msg.Data); err != nil || m.Chunk == nil || m.Chunk.Verify(g.r.bid, key) != nil {
			return pubsub.ValidationReject
		}
		msg.ValidatorData = m.Chunk
		return pubsub.ValidationAccept
	})
	if err != nil {
		return nil, nil, err
	}
	t, err := ps.Join(gossipTopic)
	if err != nil {
		return nil, nil, err
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, nil, err
	}
	return t, sub, nil
}

func (g *gossipSwarm) startRoot(ctx context.Context, root *viewer) error {
	g.root = root
	g.cancels = make(map[*viewer]context.CancelFunc)
	ctx, cancel := context.WithCancel(context.Background())
	g.rootCtx = cancel
	t, sub, err := g.join(ctx, root)
	if err != nil {
		return err
	}
	g.topic = t
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	}()
	return nil
}

func (g *gossipSwarm) startViewer(_ context.Context, v *viewer) error {
	ctx, cancel := context.WithCancel(context.Background())
	_, sub, err := g.join(ctx, v)
	if err != nil {
		cancel()
		return err
	}
	g.mu.Lock()
	g.cancels[v] = cancel
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if c, ok := msg.ValidatorData.(*chunk.Chunk); ok {
				g.r.delivered(v, c)
			}
		}
	}()
	// Connect to a few random present nodes, the broadcaster among them.
	peers := g.r.candidates(g.r.cfg.GossipPeers+1, v)
	pool := []peer.AddrInfo{{ID: g.root.h.ID(), Addrs: g.root.h.Addrs()}}
	for _, p := range peers {
		pool = append(pool, peer.AddrInfo{ID: p.h.ID(), Addrs: p.h.Addrs()})
	}
	g.r.mu.Lock()
	g.r.rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	g.r.mu.Unlock()
	if len(pool) > g.r.cfg.GossipPeers {
		pool = pool[:g.r.cfg.GossipPeers]
	}
	for _, p := range pool {
		_ = v.h.Connect(ctx, p)
	}
	v.mu.Lock()
	v.attached[0] = true // a candidate for later viewers
	v.mu.Unlock()
	return nil
}

func (g *gossipSwarm) publish(ctx context.Context, c *chunk.Chunk) error {
	data := (&mesh.Message{Type: mesh.MsgChunk, Chunk: c}).Marshal(nil)
	return g.topic.Publish(ctx, data, pubsub.WithValidatorData(c))
}

func (g *gossipSwarm) kill(v *viewer) {
	_ = v.h.Close()
	g.mu.Lock()
	cancel := g.cancels[v]
	delete(g.cancels, v)
	g.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (g *gossipSwarm) close() {
	g.mu.Lock()
	for v, cancel := range g.cancels {
		cancel()
		delete(g.cancels, v)
	}
	g.mu.Unlock()
	if g.rootCtx != nil {
		g.rootCtx()
	}
	g.wg.Wait()
}

func (g *gossipSwarm) extra(rep *report.Report) {}
