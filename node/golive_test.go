package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media/publish"
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

// TestOnePublisher: RTMP and WHIP share one publisher slot per broadcast
// (the state machine is media/publish's, tested there); the node finds the
// broadcast by the WHIP key, cleans and announces a publisher's title, and
// a publisher that ends its stream ends the broadcast: its announcement
// says so, Done closes, LL-HLS ends, and the parts reached the players.
func TestOnePublisher(t *testing.T) {
	n := newTestNode(t)
	b, err := n.GoLive(t.Context(), LiveConfig{Title: "ingest", WHIP: true, RTMP: "127.0.0.1:0", Grace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := b.pub
	key := b.StreamKey()
	u := b.URLs()
	if len(key) != 20 || u.RTMP == "" || u.WHIP == "" || u.BroadcasterPage == "" || !strings.HasSuffix(u.RTMP, "/live/"+key) {
		t.Fatalf("key %q, URLs %+v", key, u)
	}
	if err := n.authorizeWHIP("wrong"); !errors.Is(err, publish.ErrStreamKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := n.authorizeWHIP(key); err != nil {
		t.Fatal(err)
	}
	sink, err := p.Publish("whip", " A new\x00 title\n")
	if err != nil {
		t.Fatal(err)
	}
	if a := b.Announcement(); a.Title != "A new title" || a.Version <= 1 || b.Publishing() != "whip" {
		t.Fatalf("announcement %+v, publishing %q", a, b.Publishing())
	}
	if err := n.authorizeWHIP(key); !errors.Is(err, publish.ErrBusy) {
		t.Fatalf("second publisher: %v", err)
	}
	testutil.Feed(t, sink, 2*time.Second)
	p.Unpublish(errors.New("connection reset"))
	if ended(b) {
		t.Fatal("ended without the grace period")
	}
	sink, err = p.Publish("rtmp", "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Feed(t, sink, 2*time.Second)
	p.Unpublish(nil)
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a publisher that ended its stream did not end the broadcast")
	}
	if a := b.Announcement(); !a.Ended || a.Bitrate <= 0 || a.Title != "A new title" {
		t.Fatalf("the announcement at the end: %+v", a)
	}
	if err := n.authorizeWHIP(key); !errors.Is(err, publish.ErrEnded) {
		t.Fatalf("publisher after the end: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "LL-HLS to end", func() bool { return b.hls.Info().Ended })
	st, err := b.Status(t.Context())
	if err != nil || st.Received < 15 {
		t.Fatalf("%d parts, %v", st.Received, err)
	}
	if m := b.ReplayManifest(); m == nil || m.Title != "A new title" || len(m.Chunks) < 17 {
		t.Fatalf("the replay's manifest: %+v", m)
	}
}

// TestGraceEnds: a publisher cut off that does not come back ends the
// broadcast when the grace period is over.
func TestGraceEnds(t *testing.T) {
	n := newTestNode(t)
	b, err := n.GoLive(t.Context(), LiveConfig{WHIP: true, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := b.pub.Publish("whip", "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Feed(t, sink, time.Second)
	b.pub.Unpublish(errors.New("ice failed"))
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the grace period never ended the broadcast")
	}
	testutil.WaitFor(t, 10*time.Second, "LL-HLS to end", func() bool { return b.hls.Info().Ended })
}

func ended(b *Broadcast) bool { return b.ended() }
