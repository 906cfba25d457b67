//go:build !light

package main

import (
	"strings"
	"testing"
)

// TestDemoShort runs the demo for a few seconds: every node gets a player
// page and a place in the tree, and the tree is printed with figures.
func TestDemoShort(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time demo")
	}
	out, err := capture(t, func() error {
		return run(t.Context(), []string{"demo", "--viewers", "3", "--duration", "8s", "--every", "3s"})
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Player pages", "broadcaster  depth 0", "viewer 3", "/hls/index.m3u8", "parts published", "latency"} {
		if !strings.Contains(out, want) {
			t.Fatalf("%q not in the demo's output:\n%s", want, out)
		}
	}
	if strings.Contains(out, "joining") {
		t.Fatalf("a viewer never joined:\n%s", out)
	}
}
