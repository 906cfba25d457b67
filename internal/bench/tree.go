package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/mesh/stripe"
)

// treeSwarm runs the relay tree: every host runs a mesh/p2p Tree, or with
// Config.Stripes a mesh/stripe Group of them.
type treeSwarm struct {
	r        *run
	rootInfo mesh.PeerInfo
	root     treeNode

	mu    sync.Mutex
	nodes map[*viewer]treeNode
	stats mesh.Stats        // of the nodes killed or closed
	lost  [16]atomic.Uint64 // EvParentLost by LossReason
	loops atomic.Uint64

	chat    *chatNet // with Config.Chat
	chatFig chatFigures
}

var lossNames = [16]string{"none", "down", "silent", "left", "forged", "loop", "moved", "withheld", "padded"}

// treeNode is one host's part: one tree, or a striped group of them (both
// publish and close as one: a group's lending loop, then its trees).
type treeNode struct {
	trees   []*p2p.Tree
	carrier interface {
		Publish(ctx context.Context, c *chunk.Chunk) error
		Close() error
	}
}

// start starts v's part: cfg is the whole stream's, opts(k) tree k's
// options; deliver gets whole chunks (assembled, when striped).
func (t *treeSwarm) start(v *viewer, cfg mesh.Config, deliver func(*chunk.Chunk), opts func(k int) []p2p.Option) (treeNode, error) {
	rc := t.r.cfg
	if rc.Stripes == 0 {
		o := opts(0)
		if deliver != nil {
			o = append(o, p2p.WithDeliver(deliver))
		}
		n, err := p2p.New(v.h, cfg, o...)
		if err != nil {
			return treeNode{}, err
		}
		return treeNode{trees: []*p2p.Tree{n}, carrier: n}, nil
	}
	if deliver == nil {
		deliver = func(*chunk.Chunk) {}
	}
	g, err := stripe.New(v.h, cfg, stripe.Spec{Data: rc.Stripes, Parity: rc.Parity}, p2p.ProtocolID, deliver, opts)
	if err != nil {
		return treeNode{}, err
	}
	return treeNode{trees: g.Trees(), carrier: g}, nil
}

// treeMetrics counts one node's bytes in tree k.
type treeMetrics struct {
	r *run
	v *viewer
	k int
}

func (m treeMetrics) Sent(_ mesh.PeerID, msg *mesh.Message, chunk, ctl int) {
	if msg.Type == mesh.MsgChunk {
		if m.v.role != padder {
			m.r.relayedPad(msg.Chunk.Seq, chunk+ctl)
		}
		m.v.chunkSent.Add(uint64(chunk + ctl))
	} else {
		m.v.ctrlSent.Add(uint64(ctl))
	}
}

func (m treeMetrics) Received(_ mesh.PeerID, msg *mesh.Message, chunk, ctl int) {
	if msg.Type == mesh.MsgChunk && m.v != m.r.root {
		m.r.received(m.v, msg.Chunk.Seq, m.k, chunk+ctl)
	}
}

func (t *treeSwarm) config(v *viewer) mesh.Config {
	cfg := mesh.DefaultConfig()
	cfg.Root = t.rootInfo
	cfg.Broadcast = t.r.bid
	cfg.Key = t.r.key
	cfg.Slots = v.slots
	cfg.Counters = chat.TreeCounters()
	cfg.ChunkInterval = t.r.cfg.ChunkInterval
	cfg.Rand = rand.New(rand.NewPCG(t.r.cfg.Seed, uint64(v.idx)))
	return cfg
}

func (t *treeSwarm) startRoot(ctx context.Context, root *viewer) error {
	t.nodes = make(map[*viewer]treeNode)
	t.rootInfo = p2p.Info(root.h)
	cfg := t.config(root)
	cfg.Self = t.rootInfo
	n, err := t.start(root, cfg, nil, func(k int) []p2p.Option {
		return []p2p.Option{p2p.WithMetrics(treeMetrics{t.r, root, k}), p2p.WithLogger(t.r.cfg.Logger)}
	})
	if err != nil {
		return fmt.Errorf("bench: broadcaster: %w", err)
	}
	t.root = n
	if t.r.cfg.Chat {
		t.chat = &chatNet{r: t.r}
		if err := t.chat.join(root, n.trees[0], true); err != nil {
			return err
		}
	}
	return nil
}

func (t *treeSwarm) startViewer(ctx context.Context, v *viewer) error {
	r := t.r
	n, err := t.start(v, t.config(v), func(c *chunk.Chunk) { r.delivered(v, c) }, func(k int) []p2p.Option {
		return []p2p.Option{p2p.WithSendFilter(r.sendFilter(v)),
			p2p.WithLogger(r.cfg.Logger),
			p2p.WithMetrics(treeMetrics{r, v, k}),
			p2p.WithEvents(func(e mesh.Event) { t.event(v, k, e) })}
	})
	if err != nil {
		return fmt.Errorf("bench: viewer %d: %w", v.idx, err)
	}
	t.mu.Lock()
	t.nodes[v] = n
	t.mu.Unlock()
	if t.chat != nil {
		if err := t.chat.join(v, n.trees[0], false); err != nil {
			return err
		}
	}
	var infos []mesh.PeerInfo
	for _, c := range r.candidates(r.cfg.Candidates, v) {
		infos = append(infos, p2p.Info(c.h))
	}
	if len(infos) > 0 {
		for _, tr := range n.trees {
			tr.AddCandidates(infos...)
		}
	}
	return nil
}

// event records what tree k told viewer v.
func (t *treeSwarm) event(v *viewer, k int, e mesh.Event) {
	r := t.r
	switch e.Type {
	case mesh.EvAttached:
		r.attached(v, k, e.Peer, e.Depth)
	case mesh.EvParentLost, mesh.EvDetached:
		r.detached(v, k)
	}
	v.mu.Lock()
	dead := v.dead // a killed node sees its own parent go: not a loss to count
	v.mu.Unlock()
	if dead {
		return
	}
	if e.Type == mesh.EvParentLost && int(e.Loss) < len(t.lost) {
		t.lost[e.Loss].Add(1)
	}
	if e.Type == mesh.EvLoopRefused {
		t.loops.Add(1)
	}
}

func (t *treeSwarm) publish(ctx context.Context, c *chunk.Chunk) error {
	return t.root.carrier.Publish(ctx, c)
}

func (t *treeSwarm) kill(v *viewer) {
	t.mu.Lock()
	n := t.nodes[v]
	delete(t.nodes, v)
	t.mu.Unlock()
	_ = v.h.Close()
	t.r.cleanup.Add(1)
	go func() {
		defer t.r.cleanup.Done()
		if t.chat != nil {
			t.chat.leave(v)
		}
		if n.trees != nil {
			t.closeNode(n)
		}
	}()
}

func (t *treeSwarm) closeNode(n treeNode) {
	for _, tr := range n.trees {
		if _, st, err := tr.Status(context.Background()); err == nil {
			t.mu.Lock()
			t.stats.Add(&st)
			t.mu.Unlock()
		}
	}
	_ = n.carrier.Close()
}

func (t *treeSwarm) close() {
	if t.chat != nil {
		t.chat.close() // the rooms before the trees and hosts
	}
	t.mu.Lock()
	nodes := t.nodes
	t.nodes = map[*viewer]treeNode{}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); t.closeNode(n) }()
	}
	wg.Wait()
	if t.root.carrier != nil {
		_ = t.root.carrier.Close()
	}
}

// extra adds the tree's counters; it runs before close, so it asks the live
// nodes for theirs.
func (t *treeSwarm) extra(rep *report.Report) {
	t.mu.Lock()
	st := t.stats
	nodes := make([]*p2p.Tree, 0, len(t.nodes)*t.r.trees())
	for _, n := range t.nodes {
		nodes = append(nodes, n.trees...)
	}
	t.mu.Unlock()
	depths := 0.0
	attached := 0
	for _, n := range nodes {
		s, x, err := n.Status(context.Background())
		if err != nil {
			continue
		}
		st.Add(&x)
		rep.Extra["state_"+s.State]++
		if s.Depth >= 0 {
			depths += float64(s.Depth)
			attached++
		}
	}
	for i := range t.lost {
		if n := t.lost[i].Load(); n > 0 {
			rep.Extra["parent_lost_"+lossNames[i]] = float64(n)
		}
	}
	rep.Extra["loop_refused"] = float64(t.loops.Load())
	rep.Extra["rejoins"] = float64(st.Rejoins)
	rep.Extra["moves"] = float64(st.Moves)
	rep.Extra["pulls"] = float64(st.Pulls)
	rep.Extra["duplicates"] = float64(st.Duplicates)
	rep.Extra["too_old"] = float64(st.TooOld)
	rep.Extra["forged"] = float64(st.Forged)
	rep.Extra["attached_at_end"] = float64(attached)
	if attached > 0 {
		rep.Extra["mean_depth_at_end"] = round4(depths / float64(attached))
	}
}
