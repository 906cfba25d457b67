//go:build light

package main

import (
	"strings"
	"testing"
)

// TestViewerBuild: the viewer-only build says what it is in its help, and
// a command it leaves out is a usage error that says why, not "unknown".
func TestViewerBuild(t *testing.T) {
	out, err := capture(t, func() error { return run(t.Context(), []string{"help"}) })
	if exitCode(err) != 0 || !strings.Contains(out, "viewer-only build") {
		t.Fatalf("peerscope help: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"bootstrap"}, {"sim", "--help"}, {"help", "demo"}} {
		out, err := capture(t, func() error { return run(t.Context(), args) })
		if exitCode(err) != 2 || err == nil || !strings.Contains(out+err.Error(), "not in this viewer-only build") {
			t.Errorf("peerscope %v: exit code %d (%v)\n%s", args, exitCode(err), err, out)
		}
	}
}
