package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestBrowserPeerPlays opens a full node's player page with ?mode=p2p in
// headless Chromium: the page's own light node (web/peer) dials the node
// over WebRTC-direct, attaches as a leaf of the broadcast's tree (under the
// full node, two hops from the broadcaster), verifies every chunk and plays
// the parts through Media Source Extensions, for 30 s without a stall.
func TestBrowserPeerPlays(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	log, _ := newLogs(t, slog.LevelInfo)
	root := newNode(t, node.Config{Slots: 1, Logger: log.With("node", "broadcaster")})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "Clip, from the tree", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	full := newNode(t, node.Config{Slots: 2, Logger: log.With("node", "full")})
	w, err := full.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the full node in the tree", func() bool { return depth(t, w) == 1 })
	waitFor(t, 30*time.Second, "chunks at the full node", func() bool { return received(t, w) > 10 })

	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	p, err := browsertest.PlayPage(ctx, t, browsertest.PlayOptions{URL: w.URLs().Player + "?mode=p2p", Seconds: 30})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(p.Log, "\n"))
	}
	latency := "none"
	if l := p.LatencyMs; l != nil {
		latency = fmt.Sprintf("median %d ms (%d–%d, n %d)", l.Median, l.Min, l.Max, l.N)
	}
	if p.Peer == nil {
		t.Fatalf("the page reports no light node\n%s", strings.Join(p.Log, "\n"))
	}
	t.Logf("p2p at depth %d under %s: startup %v ms (first frame seen at %d ms), latency %s, advanced %.1f s in 30 s, %d stalls (max %d ms); the leaf: %d chunks verified, %d forged, %d pulls, %d rejoins",
		p.Peer.Depth, shortID(p.Peer.Parent), deref(p.StartupMs), p.FirstFrameMs, latency, p.Advanced, p.Stalls, p.MaxStallMs,
		p.Peer.Chunks, p.Peer.Forged, p.Peer.Pulls, p.Peer.Rejoins)
	if p.Mode != "p2p" {
		t.Fatalf("the page played over %q, want p2p\n%s", p.Mode, strings.Join(p.Log, "\n"))
	}
	if p.Peer.Parent != full.ID().String() || p.Peer.Depth != 2 {
		t.Errorf("the page's parent is %s at depth %d, want the full node %s at depth 2", p.Peer.Parent, p.Peer.Depth, full.ID())
	}
	if p.Advanced < 28 || p.Stalls > 0 {
		t.Errorf("currentTime advanced %.1f s in 30 s, %d stalls (max %d ms)\n%s", p.Advanced, p.Stalls, p.MaxStallMs, strings.Join(p.Log, "\n"))
	}
	if p.Peer.Forged > 0 || len(p.Errors) > 0 {
		t.Errorf("%d chunks refused as forged, page errors %q", p.Peer.Forged, p.Errors)
	}
	if p.Peer.Chunks < 100 {
		t.Errorf("the leaf verified %d chunks in 30 s", p.Peer.Chunks)
	}
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}
