package node

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/nat"
)

// TreeStatus is this node's place in the broadcast's tree and what it moved.
type TreeStatus struct {
	State    string
	Depth    int // hops from the broadcaster (0 on it); -1 while not in the tree
	Parent   peer.ID
	Children []peer.ID
	Slots    int
	Subtree  uint32     // this node and all below it, as last reported
	Mesh     mesh.Stats // the tree's counters (chunks in, duplicates, forged…)

	// ParentPath says how this node reaches its parent (direct, or relayed
	// when only through a circuit relay); RelayedChildren counts the
	// children reached only through one.
	ParentPath      nat.Path
	RelayedChildren int

	Received uint64 // media chunks delivered to the local players
	Dropped  uint64 // delivered chunks the players could not take
	// Undecryptable counts a private broadcast's chunks that did not open
	// here (no keys for their epoch, or a failed open).
	Undecryptable uint64
	// Epoch is a private broadcast's newest epoch whose keys this node
	// holds (0: public).
	Epoch      uint32
	ChunksSent uint64        // chunk messages sent to children
	BytesSent  uint64        // chunk payload bytes sent to children
	Latency    time.Duration // capture → receipt of the newest media chunk
	LatencySum time.Duration // over Received: the mean is LatencySum ÷ Received

	HLSRequests  uint64 // LL-HLS requests served by this node
	WHEPSessions int    // WebRTC playback sessions open on this node
	// WebViewers is the browsers this node serves, counted by client (an
	// address, at most four each): what it tells the tree.
	WebViewers int
}

// Status returns this node's place in the tree and its counters.
func (b *Broadcast) Status(ctx context.Context) (TreeStatus, error) {
	st, stats, err := b.tree.Status(ctx)
	if err != nil {
		if errors.Is(err, p2p.ErrClosed) {
			err = ErrClosed
		}
		return TreeStatus{Depth: -1}, err
	}
	ts := TreeStatus{
		State:         st.State,
		Depth:         st.Depth,
		Slots:         b.Slots(),
		Subtree:       st.Subtree,
		Mesh:          stats,
		Received:      b.received.Load(),
		Dropped:       b.dropped.Load(),
		Undecryptable: b.undecryptable.Load(),
		Epoch:         b.Epoch(),
		ChunksSent:    b.chunksOut.Load(),
		BytesSent:     b.bytesOut.Load(),
		Latency:       time.Duration(b.latestLat.Load()),
		LatencySum:    time.Duration(b.latencySum.Load()),

		HLSRequests:  b.hlsRequests.Load(),
		WHEPSessions: b.whep.Sessions(),
		WebViewers:   b.webViewers(),
	}
	if st.Parent != "" {
		ts.Parent, _ = p2p.PeerID(st.Parent)
		ts.ParentPath = b.n.PathTo(ts.Parent)
	}
	for _, c := range st.Children {
		if id, err := p2p.PeerID(c); err == nil {
			ts.Children = append(ts.Children, id)
			if b.n.PathTo(id) == nat.PathRelayed {
				ts.RelayedChildren++
			}
		}
	}
	return ts, nil
}

// Publishing reports over which protocol a publisher is live ("rtmp",
// "whip", "source"), or "" (always on a viewer).
func (b *Broadcast) Publishing() string {
	if b.pub == nil {
		return ""
	}
	return b.pub.Live()
}

// Err returns why the broadcast's source stopped before its end (bad
// input), or nil.
func (b *Broadcast) Err() error {
	if b.pub == nil {
		return nil
	}
	return b.pub.Err()
}
