package node_test

import (
	"testing"
	"time"

	"github.com/peerscope/peerscope/node"
)

// TestSlotsFollowTheBitrate: with a 5 Mb/s upload, a node sized its slots
// for the 2.5 Mb/s default (one slot: one liar in it held the whole
// audience). Streaming the 0.55 Mb/s sample, the broadcaster and a viewer
// both resize to what the measured bitrate gives: 5M / (0.55M x 1.5) = 6.
func TestSlotsFollowTheBitrate(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	const upload = 5_000_000
	root := newNode(t, node.Config{Upload: upload})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "slots", Source: gated{gate, sampleSource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Slots(); got != 1 {
		t.Fatalf("slots before any media: %d, want 1 (5 Mb/s for the 2.5 Mb/s default)", got)
	}
	v, err := newNode(t, node.Config{Upload: upload}).Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	close(gate)
	for _, x := range []struct {
		who string
		b   *node.Broadcast
	}{{"broadcaster", b}, {"viewer", v}} {
		waitFor(t, 30*time.Second, "the "+x.who+"'s slots to follow the measured bitrate", func() bool {
			return x.b.Slots() >= 5
		})
		t.Logf("%s: %d slots at %d bit/s announced", x.who, x.b.Slots(), x.b.Announcement().Bitrate)
	}
	ctx := t.Context()
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Slots != b.Slots() {
		t.Errorf("status says %d slots, Slots %d", st.Slots, b.Slots())
	}
}
