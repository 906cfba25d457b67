package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestPageWeights measures, in headless Chromium at a phone's size, the
// first load of each page a person opens (tests/browser/weights.mjs):
// bytes over the wire and the time until the page shows what it is for.
// It is a measurement, not a check, and takes about a minute, so it runs
// only with PEERSCOPE_WEIGHTS=1; it prints a table for docs/BENCHMARKS.md.
//
//	PEERSCOPE_WEIGHTS=1 go test -count=1 ./node/ -run TestPageWeights -v
func TestPageWeights(t *testing.T) {
	if os.Getenv("PEERSCOPE_WEIGHTS") == "" {
		t.Skip("a measurement: PEERSCOPE_WEIGHTS=1 to run it")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	n, err := node.New(t.Context(), node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	live, err := n.GoLive(t.Context(), node.LiveConfig{Title: "page weights", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	waitHLS(t, live, 30*time.Second)
	waitFor(t, 30*time.Second, "the broadcast in the bootstrap's directory", func() bool {
		return strings.Contains(string(get(t, svc.URL()+"/api/v1/broadcasts")), live.ID())
	})

	// NAME|READY|URL: READY names what the page shows once it is of use
	// (weights.mjs): the first broadcast listed, a profile's name, the
	// player's first frame, the studio's camera preview with Go live on.
	pages := []string{
		"directory (bootstrap /)|listed|" + svc.URL() + "/",
		"profile (bootstrap /?u=)|profile|" + svc.URL() + "/?u=" + n.ID().String(),
		"directory (node /directory/)|listed|" + n.HTTPURL() + "/directory/",
		"player (node /b/ID/)|frame|" + live.URLs().Player,
		"web link (bootstrap /w/ID/)|frame|" + svc.URL() + "/w/" + live.ID() + "/",
		"studio (node /broadcast/)|preview|" + n.HTTPURL() + "/broadcast/",
	}
	args := []string{"--size", "390x844", "--timeout", "45000"}
	for _, p := range pages {
		args = append(args, "--page", p)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "weights.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	type bytes struct{ Wire, Body, N int }
	var r struct {
		Error string
		Pages []struct {
			Name             string
			DCL, Load, Ready float64
			Assets, Data     bytes
			CDP              struct{ Assets, Data, Requests int }
			Files            []struct {
				Name, Type string
				Wire, Body int
			}
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("weights.mjs printed %s: %v", out, err)
	}
	if r.Error != "" || len(r.Pages) != len(pages) {
		t.Fatalf("weights.mjs: %q, %d pages measured, want %d", r.Error, len(r.Pages), len(pages))
	}
	var b strings.Builder
	fmt.Fprintln(&b, "| page | assets over the wire (files) | assets unpacked | data (fetch/XHR) over the wire | CDP: assets / data | DOMContentLoaded | load | ready |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|")
	kb := func(n int) string { return fmt.Sprintf("%.1f KB", float64(n)/1000) }
	for _, p := range r.Pages {
		fmt.Fprintf(&b, "| %s | %s (%d) | %s | %s (%d) | %s / %s | %.0f ms | %.0f ms | %.0f ms |\n", p.Name,
			kb(p.Assets.Wire), p.Assets.N, kb(p.Assets.Body), kb(p.Data.Wire), p.Data.N, kb(p.CDP.Assets), kb(p.CDP.Data), p.DCL, p.Load, p.Ready)
	}
	fmt.Fprintln(&b, "\nThe assets of each page, over the wire / unpacked:")
	for _, p := range r.Pages {
		var files []string
		for _, f := range p.Files {
			files = append(files, fmt.Sprintf("%s %s/%s", f.Name, kb(f.Wire), kb(f.Body)))
		}
		fmt.Fprintf(&b, "- %s: %s\n", p.Name, strings.Join(files, ", "))
	}
	t.Log("\n" + b.String())
}
