package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// fastClock runs speed times faster than real time, from the real now:
// a file paced on it plays speed times faster, its samples stamped with
// the clock's time, so a broadcast of a minute takes seconds.
type fastClock struct {
	speed float64
	t0    time.Time
}

func newFastClock(speed float64) *fastClock { return &fastClock{speed: speed, t0: time.Now()} }

func (c *fastClock) Now() time.Time {
	return c.t0.Add(time.Duration(float64(time.Since(c.t0)) * c.speed))
}

func (c *fastClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(float64(d) / c.speed))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jumpClock is a node clock that tests move by hand (replay expiry): the
// system's, ahead by what Add added; it ticks and sleeps as the system's.
type jumpClock struct {
	clock.System
	mu  sync.Mutex
	off time.Duration
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *jumpClock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// limited plays src until its media reaches d, then ends (returns nil).
type limited struct {
	src media.Source
	d   time.Duration
}

func (l limited) Run(ctx context.Context, sink media.Sink) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := l.src.Run(ctx, &limitSink{Sink: sink, d: l.d, stop: cancel})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type limitSink struct {
	media.Sink
	d     time.Duration
	first time.Duration
	seen  bool
	stop  func()
}

func (s *limitSink) Sample(smp media.Sample) error {
	if !s.seen {
		s.first, s.seen = smp.DTS, true
	}
	if smp.DTS-s.first >= s.d {
		s.stop()
		return context.Canceled
	}
	return s.Sink.Sample(smp)
}

// clipFor returns the sample, looped and paced speed times faster than
// real time, cut at d of media.
func clipFor(t *testing.T, d time.Duration, speed float64) media.Source {
	return limited{src: sampleSource(t, ingest.WithLoop(), ingest.WithClock(newFastClock(speed))), d: d}
}

// TestNodesKeepWhatTheyReceived: the broadcaster keeps every chunk it
// made, a viewer every chunk it received, a node that opted out none; 24
// hours after the end every node has deleted them.
func TestNodesKeepWhatTheyReceived(t *testing.T) {
	clk := &jumpClock{}
	root := newNode(t, node.Config{Slots: 2, Clock: clk})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "kept", Source: gated{gate, clipFor(t, 6*time.Second, 4)}})
	if err != nil {
		t.Fatal(err)
	}
	viewer := newNode(t, node.Config{Slots: node.NoRelay, Clock: clk})
	optOut := newNode(t, node.Config{Slots: node.NoRelay, NoReplays: true, Clock: clk})
	var ws []*node.Broadcast
	for _, n := range []*node.Node{viewer, optOut} {
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "viewer in the tree", func() bool { return depth(t, w) == 1 })
		ws = append(ws, w)
	}
	close(gate)
	for _, w := range append(ws, b) {
		select {
		case <-w.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the broadcast did not end")
		}
	}
	if optOut.ReplayStore() != nil {
		t.Fatal("a node that opted out has a replay store")
	}
	held := func(n *node.Node) (media, end int) {
		for _, h := range n.ReplayStore().Held(b.ID()) {
			if h.Flags&chunk.FlagInit == 0 {
				media++
			}
			if h.Flags&chunk.FlagEnd != 0 {
				end++
			}
		}
		return
	}
	waitFor(t, 20*time.Second, "the chunks kept", func() bool {
		rm, re := held(root)
		vm, ve := held(viewer)
		_, rend := root.ReplayStore().End(b.ID())
		_, vend := viewer.ReplayStore().End(b.ID())
		return rm > 25 && re == 1 && vm == rm && ve == 1 && rend && vend
	})
	rm, _ := held(root)
	vm := len(viewer.ReplayStore().Held(b.ID()))
	t.Logf("%d media chunks kept on the broadcaster and the viewer", rm)
	clk.Add(24*time.Hour + time.Minute)
	for _, n := range []*node.Node{root, viewer} {
		if len(n.ReplayStore().Held(b.ID())) != 0 {
			t.Fatal("expired chunks are still listed")
		}
		if _, err := n.ReplayStore().Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if u := n.ReplayStore().Usage(); u.Chunks != 0 || u.Bytes != 0 {
			t.Fatalf("after the sweep: %+v", u)
		}
	}
	metrics := string(get(t, viewer.HTTPURL()+"/metrics"))
	for _, want := range []string{"peerscope_replay_chunks 0", "peerscope_replay_bytes 0", fmt.Sprintf(`peerscope_replay_events_total{event="swept"} %d`, vm)} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}
