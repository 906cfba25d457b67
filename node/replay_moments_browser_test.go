package node_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
)

// TestReplayMomentsPage opens TestReplayMoments's replay in headless
// Chromium at 390x844 and 1024x768 at once (tests/browser/replay-moments.mjs):
// the comment written 3 s in is listed only once the playhead passed it,
// the hearts float when it passes their second (and not before), a seek
// back hides the comment and a seek past lists it without floating hearts;
// no console errors, no sideways scrolling.
func TestReplayMomentsPage(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	r, _ := momentsReplay(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	args := []string{"--url", r.PlayerURL(), "--comment", "three seconds in"}
	if dir := os.Getenv("PEERSCOPE_SCREENSHOTS"); dir != "" {
		args = append(args, "--screenshots", dir)
	}
	start := time.Now()
	out, err := browsertest.Run(ctx, t, "replay-moments.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		Error                            string
		Errors                           []string
		CommentAt, HeartsAt              float64
		ListedAt, FloatedAt              *float64
		ListedBefore, FloatedEarly       bool
		HeartsOnScreen, SeekFloated      int
		BackListed, PastListed, Sideways bool
	}
	var p struct {
		Error string
		Sizes map[string]seen
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("replay-moments.mjs printed %q: %v", out, err)
	}
	t.Logf("browser part: %v", time.Since(start).Round(100*time.Millisecond))
	if p.Error != "" || len(p.Sizes) != 2 {
		t.Fatalf("replay-moments.mjs: %s (%d sizes)", p.Error, len(p.Sizes))
	}
	for name, s := range p.Sizes {
		if s.ListedAt == nil || s.FloatedAt == nil {
			t.Fatalf("%s: the comment or the hearts never came: %+v", name, s)
		}
		t.Logf("%s: comment at %.2f s listed at %.2f s; hearts at %.2f s floated at %.2f s (%d on screen); seek back listed %v, past %v (%d floated); sideways %v",
			name, s.CommentAt, *s.ListedAt, s.HeartsAt, *s.FloatedAt, s.HeartsOnScreen, s.BackListed, s.PastListed, s.SeekFloated, s.Sideways)
		switch {
		case s.Error != "":
			t.Fatalf("%s: %s", name, s.Error)
		case s.ListedBefore || *s.ListedAt < s.CommentAt || *s.ListedAt > s.CommentAt+1:
			t.Fatalf("%s: the comment at %.2f s was listed at %.2f s (before its time: %v)", name, s.CommentAt, *s.ListedAt, s.ListedBefore)
		case s.FloatedEarly || *s.FloatedAt < s.HeartsAt || *s.FloatedAt > s.HeartsAt+1 || s.HeartsOnScreen == 0:
			t.Fatalf("%s: hearts at %.2f s floated at %.2f s (early: %v, %d on screen)", name, s.HeartsAt, *s.FloatedAt, s.FloatedEarly, s.HeartsOnScreen)
		case s.BackListed || !s.PastListed || s.SeekFloated != 0:
			t.Fatalf("%s: seeking: back listed %v, past listed %v, %d hearts floated", name, s.BackListed, s.PastListed, s.SeekFloated)
		case s.Sideways:
			t.Fatalf("%s: the page scrolls sideways", name)
		case len(s.Errors) > 0:
			t.Fatalf("%s: console errors %q", name, s.Errors)
		}
	}
}
