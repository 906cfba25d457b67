package chat

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/peerscope/peerscope/mesh"
)

// The chat's side of the broadcast's relay tree. What every viewer does at
// some rate does not go on the topic, where the broadcaster would get every
// message: the tree adds it up, in two named counters its statuses carry
// (the tree knows nothing of what they mean).
const (
	// TreeHearts counts taps: events, each node's going up as deltas, so a
	// node that changes parents counts nothing twice.
	TreeHearts = "hearts"
	// TreeWeb counts the viewers the nodes serve in browsers beyond the
	// node's own person: a gauge, summed up the tree as Subtree counts nodes.
	TreeWeb = "web"
	// treeMomentPrefix names the moment counters: "hearts@k" counts the
	// taps (events, as TreeHearts) made while their tapper watched a frame
	// captured in a second whose Unix time is k modulo MomentSeconds. They
	// are counted in TreeHearts too; a node that does not know them (older
	// than moments) ignores them and passes TreeHearts on, so its subtree's
	// hearts are placed where they reach the broadcaster, as before.
	treeMomentPrefix = "hearts@"

	// treeHeartsPerNode bounds the hearts a child's status may claim per
	// node of its subtree: more than a subtree could tap between two
	// statuses, not so much that one liar drowns the count.
	treeHeartsPerNode = 1000
	// treeWebPerNode bounds the browsers a child's status may claim per
	// node of its subtree (as its parent bounds that subtree): more than
	// one node's upload could serve, so that no subtree inflates the
	// audience beyond what its peers could carry.
	treeWebPerNode = 256
)

// MomentSeconds is how many seconds of the stream the tree's moment
// counters tell apart: a tap's moment is counted by its second modulo
// MomentSeconds, and the broadcaster places a rise of counter k in the
// latest second before it with that remainder. So the moment goes up the
// tree in the statuses the mesh sends anyway, with the distribution of
// each second kept (one counter per second the subtree's taps watched in a
// status interval: one or two), at the price of a window: a tap is placed
// by its moment only if its tapper watched less than maxTreeLag behind,
// which leaves the status's trip up the tree the rest of the window.
const MomentSeconds = 32

// maxTreeLag bounds how far behind its tapper's clock a tap's moment may be
// for the tree to carry it (otherwise the tap is counted without one).
const maxTreeLag = (MomentSeconds - 6) * time.Second

func momentCounter(k int) string { return treeMomentPrefix + strconv.Itoa(k) }

// momentIndex is the moment counter of a moment (a capture wallclock).
func momentIndex(at time.Time) int {
	return int(((at.Unix() % MomentSeconds) + MomentSeconds) % MomentSeconds)
}

// momentOf returns the second a rise of moment counter k seen at now
// stands for: the latest second at or before now whose Unix time is k
// modulo MomentSeconds.
func momentOf(now time.Time, k int) time.Time {
	s := now.Unix()
	d := ((s-int64(k))%MomentSeconds + MomentSeconds) % MomentSeconds
	return time.Unix(s-d, 0)
}

// TreeCounters returns the counters a broadcast's tree carries for its chat:
// every node of the tree puts them in its mesh.Config.Counters.
func TreeCounters() []mesh.Counter {
	cs := []mesh.Counter{
		{Name: TreeHearts, Kind: mesh.CounterEvents, MaxPerNode: treeHeartsPerNode},
		{Name: TreeWeb, Kind: mesh.CounterGauge, MaxPerNode: treeWebPerNode},
	}
	for k := range MomentSeconds {
		cs = append(cs, mesh.Counter{Name: momentCounter(k), Kind: mesh.CounterEvents, MaxPerNode: treeHeartsPerNode})
	}
	return cs
}

// HeartSums is what a tree counted of the hearts, as the broadcaster reads
// it: the total, and of those whose tapper said what it watched, a count
// per second of the stream modulo MomentSeconds (the moment counters).
type HeartSums struct {
	Total   uint64
	Moments [MomentSeconds]uint64
}

// Tree is what a room needs of its node's place in the broadcast's relay
// tree (a mesh/p2p Tree): somewhere to count taps and report browsers, the
// tree's sums as this node sees them (and on the broadcaster, its newest
// chunk), and where the live edge the broadcaster's beat says goes. Count,
// SetGauge and LiveEdge must never block.
type Tree interface {
	Count(name string, n uint64) error
	SetGauge(name string, v uint64) error
	Status(ctx context.Context) (mesh.Status, mesh.Stats, error)
	LiveEdge(seq uint64)
}

// TreeLink ties a room to its node's tree: the room's taps go up the tree
// (Config.Tap, with their moments), the node reports its browsers
// (ReportBrowsers), the live edge of the broadcaster's beats goes to the
// tree (Config.LiveEdge), and on the broadcaster the room reads the live
// count, the browsers, the hearts and the live edge from the tree
// (Config.Audience, WebViewers, Hearts, Edge), as Refresh last read them:
// the room never waits on the tree's goroutine.
type TreeLink struct {
	tree    Tree
	subtree atomic.Int64  // nodes, this one included
	web     atomic.Uint64 // browsers beyond the nodes' own people
	// hearts counted so far, with their moments: one snapshot, so that a
	// rise of the total and of its moments are read together
	hearts atomic.Pointer[HeartSums]
	edge   atomic.Uint64 // 1 + the newest sequence number held; 0: none
}

// NewTreeLink returns a link to t.
func NewTreeLink(t Tree) *TreeLink { return &TreeLink{tree: t} }

// Configure plugs the link into a room's config: Tap and LiveEdge, and the
// broadcaster's Audience, WebViewers, Hearts and Edge (a viewer's room
// never calls those, nor the broadcaster's LiveEdge).
func (l *TreeLink) Configure(cfg *Config) {
	cfg.Tap = func(n int, at time.Time) {
		if n > 0 {
			_ = l.tree.Count(TreeHearts, uint64(n)) // never blocks
			if !at.IsZero() {
				_ = l.tree.Count(momentCounter(momentIndex(at)), uint64(n))
			}
		}
	}
	cfg.Audience = l.Audience
	cfg.WebViewers = l.WebViewers
	cfg.Hearts = l.HeartSums
	cfg.Edge = l.Edge
	cfg.LiveEdge = l.tree.LiveEdge
}

// ReportBrowsers tells the tree how many browsers this node serves. A node
// is counted as one viewer already (the tree's size), and its first browser
// is taken for that same person, the one who runs it and opens its page;
// each further browser (phones a home node serves) is one more. On the
// broadcaster's node the first is the broadcaster's own page.
func (l *TreeLink) ReportBrowsers(n int) {
	_ = l.tree.SetGauge(TreeWeb, uint64(max(n-1, 0)))
}

// Refresh reads the tree's sums for Audience, WebViewers and Hearts.
func (l *TreeLink) Refresh(ctx context.Context) error {
	st, _, err := l.tree.Status(ctx)
	if err != nil {
		return err
	}
	l.subtree.Store(int64(st.Subtree))
	l.web.Store(st.Counters[TreeWeb])
	h := &HeartSums{Total: st.Counters[TreeHearts]}
	for k := range h.Moments {
		h.Moments[k] = st.Counters[momentCounter(k)]
	}
	l.hearts.Store(h)
	if st.HaveAny {
		l.edge.Store(st.Highest + 1)
	}
	return nil
}

// Edge returns the live edge as Refresh last read it on the broadcaster:
// 1 + the sequence number of the newest chunk its tree cut, 0 before the
// first.
func (l *TreeLink) Edge() uint64 { return l.edge.Load() }

// Audience returns how many nodes watch live: the tree's size below this
// node (the broadcaster), as Refresh last read it.
func (l *TreeLink) Audience() int { return int(max(l.subtree.Load()-1, 0)) }

// WebViewers returns how many viewers watch in browsers beyond the tree's
// nodes, as Refresh last read it.
func (l *TreeLink) WebViewers() int { return int(min(l.web.Load(), 1<<31-1)) }

// Hearts returns the hearts the tree counted, as Refresh last read it.
func (l *TreeLink) Hearts() uint64 { return l.HeartSums().Total }

// HeartSums returns the hearts the tree counted, with their moments, as
// Refresh last read them.
func (l *TreeLink) HeartSums() HeartSums {
	if h := l.hearts.Load(); h != nil {
		return *h
	}
	return HeartSums{}
}
