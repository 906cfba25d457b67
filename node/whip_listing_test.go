package node_test

import (
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/node"
)

// TestWHIPListedOnceVideoFlows: a broadcast that waits for its WHIP
// publisher is not in the bootstrap's directory, and sends no go-live
// notice, while nobody publishes — nor while a publisher is connected
// but has sent no picture; once its first keyframe has come it is listed
// live, and the notice goes out once.
func TestWHIPListedOnceVideoFlows(t *testing.T) {
	var (
		mu      sync.Mutex
		notices = map[string]int{}
	)
	svc := startBootstrapWith(t, bootstrap.ServerConfig{OnLive: func(e bootstrap.Event) {
		mu.Lock()
		defer mu.Unlock()
		notices[e.Listing.ID]++
	}})
	noticed := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return notices[id]
	}
	const interval = 300 * time.Millisecond
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: interval})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "Waiting for the phone", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := &api.Client{Base: svc.URL()}
	listed := func() *api.Listing {
		ls, err := dir.List(t.Context(), api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.ID == b.ID() {
				return l
			}
		}
		return nil
	}
	// A control, listed at once: the directory works, and the node has
	// had time to list what it lists at the start.
	ctl, err := n.GoLive(t.Context(), node.LiveConfig{Title: "Control", Source: sampleSource(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	waitFor(t, 20*time.Second, "the control broadcast listed", func() bool {
		ls, err := dir.List(t.Context(), api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.ID == ctl.ID() {
				return true
			}
		}
		return false
	})

	gate := make(chan struct{})
	publishWHIPGated(t, n.HTTPURL()+"/broadcast/whip", b.StreamKey(), gate)
	waitFor(t, 20*time.Second, "the publisher connected", func() bool { return b.Publishing() == "whip" })
	// Three listing intervals with a publisher and no picture (under the
	// WHIP media timeout, which would end the silent session).
	for end := time.Now().Add(3 * interval); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if l := listed(); l != nil {
			t.Fatalf("listed before any video came: %+v", l)
		}
		if c := noticed(b.ID()); c != 0 {
			t.Fatalf("%d go-live notices before any video came", c)
		}
	}

	close(gate)
	waitFor(t, 30*time.Second, "the broadcast listed live once its video flows", func() bool {
		l := listed()
		return l != nil && l.Live()
	})
	waitFor(t, 10*time.Second, "the go-live notice", func() bool { return noticed(b.ID()) > 0 })
	if c := noticed(b.ID()); c != 1 {
		t.Errorf("%d go-live notices, want 1", c)
	}
}
