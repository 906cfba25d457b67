package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
)

func newTestNode(t *testing.T) *Node {
	t.Helper()
	n, err := New(t.Context(), Config{NoHTTPS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// feed plays the first seconds of the sample clip into sink, unpaced.
func feed(t *testing.T, sink media.Sink, d time.Duration) {
	t.Helper()
	src, err := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), ingest.WithPacing(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var first time.Duration = -1
	err = src.Run(ctx, sinkFunc{sink, func(s media.Sample) bool {
		if first < 0 {
			first = s.DTS
		}
		if s.DTS-first > d {
			cancel()
			return false
		}
		return true
	}})
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
}

type sinkFunc struct {
	media.Sink
	keep func(media.Sample) bool
}

func (s sinkFunc) Sample(smp media.Sample) error {
	if !s.keep(smp) {
		return nil
	}
	return s.Sink.Sample(smp)
}

// TestOnePublisher: RTMP and WHIP share one publisher slot per broadcast;
// one that never sent media frees it quietly, one that was cut off has the
// grace period to come back, and one that ends its stream ends the
// broadcast, with FlagEnd on its last part.
func TestOnePublisher(t *testing.T) {
	n := newTestNode(t)
	b, err := n.Broadcast(t.Context(), BroadcastConfig{Title: "ingest", WHIP: true, RTMP: "127.0.0.1:0", Grace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := b.pub
	key := b.StreamKey()
	if len(key) != 20 || b.RTMPURL() == "" || b.WHIPURL() == "" || b.BroadcasterPageURL() == "" {
		t.Fatalf("key %q, rtmp %q, whip %q, page %q", key, b.RTMPURL(), b.WHIPURL(), b.BroadcasterPageURL())
	}
	if err := n.authorizeWHIP("wrong"); !errors.Is(err, ErrStreamKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := n.authorizeWHIP(key); err != nil {
		t.Fatal(err)
	}
	sink, err := p.publish("whip", "A new title")
	if err != nil {
		t.Fatal(err)
	}
	if b.Title() != "A new title" || b.Publishing() != "whip" {
		t.Fatalf("title %q, publishing %q", b.Title(), b.Publishing())
	}
	if err := p.admit(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second publisher: %v", err)
	}
	// Gone before any media: the slot is free, the broadcast goes on.
	p.unpublish(errors.New("no camera"))
	if b.Ended() || b.Publishing() != "" {
		t.Fatal("a publisher that sent nothing ended the broadcast")
	}
	if err := sink.Tracks(nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a gone publisher's sink: %v", err)
	}

	// Media, then cut off: the broadcast waits, and a new publisher
	// continues it.
	sink, err = p.publish("rtmp", "")
	if err != nil {
		t.Fatal(err)
	}
	feed(t, sink, 2*time.Second)
	p.unpublish(errors.New("connection reset"))
	if b.Ended() {
		t.Fatal("ended without the grace period")
	}
	sink, err = p.publish("whip", "")
	if err != nil {
		t.Fatal(err)
	}
	// Its return stopped the grace timer (and a timer that fired anyway
	// finds another publisher's generation and does nothing).
	p.mu.Lock()
	stopped := p.grace == nil
	p.mu.Unlock()
	if !stopped || b.Ended() {
		t.Fatal("the grace timer of a publisher that came back is still set")
	}
	feed(t, sink, 2*time.Second)
	p.unpublish(nil)
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a publisher that ended its stream did not end the broadcast")
	}
	if !b.Announcement().Ended {
		t.Fatal("the announcement does not say ended")
	}
	if err := p.admit(); !errors.Is(err, ErrEnded) {
		t.Fatalf("publisher after the end: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "LL-HLS to end", func() bool { return b.hls.Info().Ended })
	st, err := b.Status(t.Context())
	if err != nil || st.Received < 15 {
		t.Fatalf("%d parts, %v", st.Received, err)
	}
}

// TestGraceEnds: a publisher cut off that does not come back ends the
// broadcast when the grace period is over.
func TestGraceEnds(t *testing.T) {
	n := newTestNode(t)
	b, err := n.Broadcast(t.Context(), BroadcastConfig{WHIP: true, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := b.pub.publish("whip", "")
	if err != nil {
		t.Fatal(err)
	}
	feed(t, sink, time.Second)
	b.pub.unpublish(errors.New("ice failed"))
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the grace period never ended the broadcast")
	}
	testutil.WaitFor(t, 10*time.Second, "LL-HLS to end", func() bool { return b.hls.Info().Ended })
}
