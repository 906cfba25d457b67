package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestE2EPlayThreeHops opens, in headless Chromium, the player page of a
// viewer node three hops from a broadcaster that streams the embedded clip,
// looped: by default (WHEP) and with ?mode=hls (the page's LL-HLS reader),
// the video must start and its currentTime advance for 20 s without a
// stall.
func TestE2EPlayThreeHops(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	log, _ := newLogs(t, slog.LevelInfo)
	root := newNode(t, node.Config{Slots: 1, Logger: log.With("node", "broadcaster")})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "Clip, 3 hops", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	deep := chain(t, b.Link(), 3, log)[2]
	waitHLS(t, deep, 30*time.Second)

	for _, tc := range []struct{ name, query, mode string }{
		{"default", "", "whep"},
		{"hls", "?mode=hls", "hls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			shot := ""
			if dir := os.Getenv("PEERSCOPE_SCREENSHOTS"); dir != "" {
				shot = dir + "/e2e-3hops-" + tc.mode + ".png"
			}
			before := received(t, deep)
			p, err := browsertest.PlayPage(ctx, t, browsertest.PlayOptions{URL: deep.URLs().Player + tc.query, Seconds: 20, Screenshot: shot})
			if err != nil {
				t.Fatal(err)
			}
			latency := "none"
			if l := p.LatencyMs; l != nil {
				latency = fmt.Sprintf("median %d ms (%d–%d, n %d)", l.Median, l.Min, l.Max, l.N)
			}
			t.Logf("%s at depth 3: startup %v ms (first frame seen at %d ms), the page's latency %s, advanced %.1f s in 20 s, %d stalls (max %d ms), %d chunks arrived meanwhile",
				p.Mode, deref(p.StartupMs), p.FirstFrameMs, latency, p.Advanced, p.Stalls, p.MaxStallMs, received(t, deep)-before)
			if p.Mode != tc.mode {
				t.Fatalf("the page played over %q, want %q\n%s", p.Mode, tc.mode, strings.Join(p.Log, "\n"))
			}
			if p.Advanced < 18 || p.Stalls > 0 {
				t.Errorf("currentTime advanced %.1f s in 20 s, %d stalls (max %d ms)\n%s", p.Advanced, p.Stalls, p.MaxStallMs, strings.Join(p.Log, "\n"))
			}
			if len(p.Errors) > 0 {
				t.Errorf("page errors: %q", p.Errors)
			}
			if p.Title != "Clip, 3 hops · Peerscope" {
				t.Errorf("page title %q", p.Title)
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
