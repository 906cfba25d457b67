package node_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
)

// TestReplayWithHoles: a full node that joined halfway completes its copy
// of the replay after the end; a light viewer that joined halfway holds
// only the second half; with the broadcaster gone, a replay from that
// light viewer fetches all
// it can (the stalled first window does not hold back the rest), serves
// those segments, and refuses the missing ones quickly (502) instead of
// hanging the player.
func TestReplayWithHoles(t *testing.T) {
	e2e(t)
	log, _ := newLogs(t, slog.LevelInfo)
	root := newNode(t, node.Config{Slots: 1, Logger: log.With("name", "broadcaster")})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "holes", Source: gated{gate, clipFor(t, 20*time.Second, 4)}})
	if err != nil {
		t.Fatal(err)
	}
	close(gate)
	waitFor(t, 30*time.Second, "half the broadcast", func() bool { return received(t, b) >= 50 })
	// Two late joiners: a full node (it relays), which completes its copy
	// after the end, and a light one, which keeps only what it received.
	full := newNode(t, node.Config{Slots: 2, Logger: log.With("name", "late-full")})
	wf, err := full.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	late := newNode(t, node.Config{Slots: node.NoRelay, Logger: log.With("name", "late-viewer")})
	w, err := late.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*node.Broadcast{wf, w} {
		select {
		case <-x.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the broadcast did not end")
		}
	}
	waitFor(t, 30*time.Second, "the late viewer's manifest", func() bool { return w.ReplayManifest() != nil })
	m := w.ReplayManifest()
	waitFor(t, 60*time.Second, "the late full node's copy completed", func() bool {
		return len(full.ReplayStore().Held(b.ID())) == len(m.Chunks)
	})
	held := len(late.ReplayStore().Held(b.ID()))
	if held == 0 || held >= len(m.Chunks)-5 {
		t.Fatalf("the late viewer holds %d of %d chunks: not a replay with holes", held, len(m.Chunks))
	}
	// The broadcaster and the full node go; only the light one is left.
	for _, n := range []*node.Node{root, full} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	viewer := newNode(t, node.Config{Slots: node.NoRelay, Logger: log.With("name", "replay-viewer")})
	r, err := viewer.Replay(t.Context(), link.Link{Broadcast: b.ID(), Peers: []peer.AddrInfo{{ID: late.ID(), Addrs: late.Host().Addrs()}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every chunk the late viewer holds", func() bool {
		p := r.Progress()
		return p.Have >= held && p.Missing > 0
	})
	p := r.Progress()
	t.Logf("replay from the late viewer: %d of %d chunks, %d missing", p.Have, p.Chunks, p.Missing)
	if p.Have != held || p.Missing != int64(p.Chunks-held) {
		t.Fatalf("progress %+v, the late viewer holds %d", p, held)
	}
	status := func(path string) (int, time.Duration) {
		t0 := time.Now()
		resp, err := http.Get(r.PlayerURL() + "hls/" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(t0)
	}
	if code, d := status("seg/0.m4s"); code != http.StatusBadGateway {
		t.Fatalf("the first segment, which no peer holds: %d after %v", code, d)
	}
	last := fmt.Sprintf("seg/%d.m4s", len(r.Manifest().Chunks)) // beyond: 404
	if code, _ := status(last); code != http.StatusNotFound {
		t.Fatalf("%s: %d", last, code)
	}
	// The last real segment is held.
	pl := string(get(t, r.HLSURL()))
	n := 0
	for i := 0; i < len(pl); i++ {
		if pl[i] == '\n' && i+1 < len(pl) && pl[i+1:min(i+8, len(pl))] == "#EXTINF" {
			n++
		}
	}
	if code, _ := status(fmt.Sprintf("seg/%d.m4s", n-1)); code != http.StatusOK {
		t.Fatalf("the last segment, which the late viewer holds: %d", code)
	}
}
