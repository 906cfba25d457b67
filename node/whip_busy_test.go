package node_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/whip"
	"github.com/peerscope/peerscope/node"
)

// TestWHIPBusyThenBack: while a publisher is live, a second one (another
// tab, or the same phone back before the node noticed it had gone) is told
// the truth — 409, another publisher is live on this broadcast — by WHIP
// and by the go-live page, not that its key was refused; once the first
// vanishes without a DELETE (its network gone), the node lets it go within
// whip.DefaultMediaTimeout and a quarter, and a new publisher goes live on
// the same broadcast.
func TestWHIPBusyThenBack(t *testing.T) {
	b, whipURL := whipBroadcast(t, "Busy")
	first := publishWHIP(t, whipURL, b.StreamKey())
	waitFor(t, 30*time.Second, "the first publisher live", func() bool { return b.Publishing() == "whip" })
	// Its media flowing, so that its vanishing below is a connected
	// publisher going silent (MediaTimeout), not one that never connected
	// (FirstKeyframeTimeout, 15 s): without the browser step between them
	// (no tests/browser/node_modules, and not CI), the publisher vanished
	// before ICE had connected and the test failed at its 10 s bound.
	waitFor(t, 30*time.Second, "the first publisher's media cut into chunks", func() bool {
		st, err := b.Status(t.Context())
		return err == nil && st.Received > 0
	})

	_, _, _, status, body := offerWHIP(t, whipURL, b.StreamKey())
	if status != http.StatusConflict || !strings.Contains(body, "another publisher is live on this broadcast") {
		t.Fatalf("a second publisher: %d %q, want 409 saying another publisher is live", status, body)
	}

	if browsertest.Missing() == "" || os.Getenv("CI") != "" {
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		out, err := browsertest.Run(ctx, t, "broadcast.mjs", "--url", b.URLs().BroadcasterPage, "--expect-error")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var page broadcastPage
		if err := json.Unmarshal(out, &page); err != nil {
			t.Fatalf("broadcast.mjs printed %q: %v", out, err)
		}
		if !strings.Contains(page.Error, "Another publisher is live on this broadcast") || strings.Contains(page.Error, "refused") {
			t.Errorf("the page in a second tab says %q, want that another publisher is live", page.Error)
		}
	}
	if b.Publishing() != "whip" {
		t.Fatal("the first publisher was cut off by the second's attempts")
	}

	first.vanish()
	// Noticed within the media timeout and a quarter (the check's period),
	// plus room for a busy machine; ICE alone would take about 15 s.
	bound := whip.DefaultMediaTimeout + whip.DefaultMediaTimeout/4 + 5*time.Second
	waitFor(t, bound, "the vanished publisher let go", func() bool { return b.Publishing() == "" })
	publishWHIP(t, whipURL, b.StreamKey())
	waitFor(t, 30*time.Second, "the new publisher live", func() bool { return b.Publishing() == "whip" })
	select {
	case <-b.Done():
		t.Fatal("the broadcast ended when its publisher vanished")
	default:
	}
}

// TestWHIPRetryBeforeConnect: a phone's go-live page reloaded before its
// first offer connected posts again with the same key. The node takes it
// at once (before, the first offer held the broadcast for 15 s and every
// retry was told another publisher was live), and the broadcast goes on.
func TestWHIPRetryBeforeConnect(t *testing.T) {
	b, whipURL := whipBroadcast(t, "Retry")
	pc, _, _, status, body := offerWHIP(t, whipURL, b.StreamKey())
	if status != http.StatusCreated {
		t.Fatalf("the first offer: %d %q", status, body)
	}
	_ = pc.Close() // its answer is never applied: the page went away
	if b.Publishing() != "whip" {
		t.Fatal("the first offer does not hold the broadcast")
	}
	publishWHIP(t, whipURL, b.StreamKey()) // fails the test unless 201
	waitFor(t, 30*time.Second, "the retry's media cut into chunks", func() bool {
		st, err := b.Status(t.Context())
		return err == nil && st.Received > 0
	})
	select {
	case <-b.Done():
		t.Fatal("the broadcast ended when its first offer was replaced")
	default:
	}
}

// whipBroadcast starts a node and a broadcast on it that takes WHIP, and
// returns the broadcast and its WHIP endpoint's URL.
func whipBroadcast(t *testing.T, title string) (*node.Broadcast, string) {
	t.Helper()
	log, _ := newLogs(t, slog.LevelInfo)
	n, err := node.New(t.Context(), node.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: title, WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	return b, n.HTTPURL() + "/broadcast/whip"
}
