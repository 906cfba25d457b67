package node_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// TestStudioThumbnail goes live from the phone studio (fake camera,
// tests/browser/studio-thumb.mjs): the studio sends a still of its
// preview, the node passes it to the bootstrap once listed, and the
// directory's live card shows it (an image that loaded) on the bootstrap's
// page and on the node's /directory/, at a phone's size and both tablets';
// the listings without a still keep their initials ("?": anonymous) in a
// picture box as tall as the still's, their cards as tall as its in a row
// (they were shorter). No console error, no
// sideways scroll. PEERSCOPE_SHOTS=DIR keeps the bootstrap's page at each
// size.
func TestStudioThumbnail(t *testing.T) {
	type card struct {
		Top, Height, Media int
		Face               string
	}
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: 300 * time.Millisecond})
	b, err := n.GoLive(t.Context(), node.LiveConfig{WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	announceAt(t, svc.URL(), 60, "Street market in Lisbon", nil)
	announceAt(t, svc.URL(), 61, "Morning run by the river", nil)
	const title = "Harbour at dusk"
	args := []string{"--url", b.URLs().BroadcasterPage, "--dir", svc.URL() + "/", "--dir", n.DirectoryURL(), "--title", title}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	out, err := browsertest.Run(ctx, t, "studio-thumb.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("studio-thumb.mjs took %s", time.Since(start).Round(100*time.Millisecond))
	var r struct {
		Error          string
		Errors         []string
		Stills         int
		StudioSideways bool
		Looks          []struct {
			Page     int
			Size     string
			Natural  [2]int
			Box      [2]int
			Initials int
			Sideways bool
			Cards    []card
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%+v", r)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 {
		t.Errorf("console errors %q", r.Errors)
	}
	if r.Stills < 1 || r.StudioSideways {
		t.Errorf("studio: %d stills sent, sideways %v", r.Stills, r.StudioSideways)
	}
	if len(r.Looks) != 6 {
		t.Fatalf("%d looks, want 3 sizes on 2 pages", len(r.Looks))
	}
	for _, l := range r.Looks {
		if l.Natural[0] < 1 || l.Natural[0] > 320 || l.Natural[1] < 1 || l.Box[0] < 40 || l.Initials != 2 || l.Sideways {
			t.Errorf("page %d at %s: %+v (want a still of 1 to 320 px wide shown, 2 cards with initials, no sideways scroll)", l.Page, l.Size, l)
		}
		// The cards with a still and without are alike: the same picture
		// box, the same height beside each other in a row; an anonymous
		// broadcaster's face says "?", as the player's does.
		if len(l.Cards) != 3 {
			t.Errorf("page %d at %s: %d cards", l.Page, l.Size, len(l.Cards))
			continue
		}
		for _, c := range l.Cards {
			if c.Media < 20 || c.Media != l.Cards[0].Media || (c.Face != "" && c.Face != "?") {
				t.Errorf("page %d at %s: cards %+v (want one picture box height, anonymous faces \"?\")", l.Page, l.Size, l.Cards)
				break
			}
		}
		for i, a := range l.Cards {
			if slices.ContainsFunc(l.Cards[i+1:], func(b card) bool { return a.Top == b.Top && a.Height != b.Height }) {
				t.Errorf("page %d at %s: cards in a row of different heights: %+v", l.Page, l.Size, l.Cards)
				break
			}
		}
	}
	got, err := (&api.Client{Base: svc.URL()}).Broadcast(t.Context(), b.ID())
	if err != nil || len(got.Thumbnail) != 16 {
		t.Errorf("listed: %+v %v", got, err)
	}
}
