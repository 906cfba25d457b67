package hearts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/web/hearts"
)

// stage is a phone-sized test page with the hearts layer over a dark
// video-like box, as the player lays it out.
const stage = `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>hearts</title><link rel="icon" href="data:,"><link rel="stylesheet" href="hearts.css">
<style>body { margin: 0; background: #000; } #video { position: relative; height: 100vh; background: linear-gradient(#223, #445); }
.hearts { bottom: 3.6em; height: 60%; }</style>
<div id="video"><div id="hearts" class="hearts" aria-hidden="true"></div></div>
<script src="hearts.js"></script>`

// stageServer serves the stage and the package's files.
func stageServer(t *testing.T) *httptest.Server {
	files := hearts.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(stage))
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestHeartsFloat, in headless Chromium (tests/browser/hearts.mjs): a
// burst of 30 floats whole, one at once, drawn on the layer's canvas; a
// call whose go says no floats none; a flood of 5,000 in 2 s keeps at most
// MAX_ALIVE (300) in the air and adds nothing to the DOM; when all have
// risen, nothing is left in the air and the canvas is blank.
func TestHeartsFloat(t *testing.T) {
	browsertest.Need(t)
	srv := stageServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "hearts.mjs", "--url", srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error                                           string
		Errors                                          []string
		AtOnce, Max, BurstFloated, BurstAlive, Children int
		BurstPainted, StoppedFloated, FloodAsked        int
		FloodMostAlive, FloodChildren, AfterPainted     int
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("hearts.mjs printed %s: %v", out, err)
	}
	t.Logf("hearts.mjs: %s", out)
	switch {
	case r.Error != "" || len(r.Errors) > 0:
		t.Fatalf("errors: %q %q", r.Error, r.Errors)
	case r.AtOnce != 1 || r.BurstFloated != 30 || r.BurstAlive == 0 || r.BurstPainted == 0 || r.Children != 1:
		t.Fatalf("a burst of 30: %d at once, %d floated, %d in the air, %d pixels painted, %d elements in the layer; want 1, 30, some, some, 1 (the canvas)",
			r.AtOnce, r.BurstFloated, r.BurstAlive, r.BurstPainted, r.Children)
	case r.StoppedFloated != 0:
		t.Fatalf("%d floated after go said no", r.StoppedFloated)
	case r.Max != 300 || r.FloodMostAlive == 0 || r.FloodMostAlive > r.Max || r.FloodChildren != 1:
		t.Fatalf("a flood of %d: %d in the air at most (cap %d), %d elements in the layer", r.FloodAsked, r.FloodMostAlive, r.Max, r.FloodChildren)
	case r.AfterPainted != 0:
		t.Fatalf("%d pixels still painted once every heart rose", r.AfterPainted)
	}
}

// TestHeartsFrameRate measures, in headless Chromium, the frame intervals
// by requestAnimationFrame on an idle page, while 50 hearts a second
// float and while a flood of 500 a second is asked for
// (tests/browser/hearts-fps.mjs), and prints them for
// docs/BENCHMARKS.md. A measurement, not a check: it runs only with
// PEERSCOPE_HEARTS_FPS=SECONDS (10 for the report):
//
//	PEERSCOPE_HEARTS_FPS=10 go test -count=1 ./web/hearts/ -run TestHeartsFrameRate -v
func TestHeartsFrameRate(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("PEERSCOPE_HEARTS_FPS"))
	if secs <= 0 {
		t.Skip("a measurement: PEERSCOPE_HEARTS_FPS=SECONDS to run it")
	}
	browsertest.Need(t)
	srv := stageServer(t)
	args := []string{"--url", srv.URL + "/", "--rate", "50", "--flood", "500", "--seconds", strconv.Itoa(secs)}
	for _, a := range strings.Fields(os.Getenv("PEERSCOPE_HEARTS_ARGS")) { // Chromium flags to compare
		args = append(args, "--arg="+a)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(3*secs+60)*time.Second)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "hearts-fps.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error     string
		UserAgent string
		Phases    []struct {
			Drive                     string
			Rate                      int
			Frames, Dropped           int
			FPS, P50, P95, P99, Max   float64
			Requested, Floated, Alive int
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("hearts-fps.mjs printed %s: %v", out, err)
	}
	if r.Error != "" || len(r.Phases) != 3 {
		t.Fatalf("hearts-fps.mjs: %q, %d phases", r.Error, len(r.Phases))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", r.UserAgent)
	fmt.Fprintln(&b, "| hearts | a second | frames | frames/s | p50 | p95 | p99 | max | dropped (> 25 ms) | hearts asked / floated | most alive |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d | %d / %d | %d |\n",
			p.Drive, p.Rate, p.Frames, p.FPS, p.P50, p.P95, p.P99, p.Max, p.Dropped, p.Requested, p.Floated, p.Alive)
	}
	t.Log("\n" + b.String())
}
