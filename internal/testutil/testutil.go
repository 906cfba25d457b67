package testutil

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// pollEvery is how often WaitFor looks again: short enough not to slow a
// test down, long enough not to busy the machine.
const pollEvery = 20 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test when within passes
// first, naming what it waited for.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(pollEvery)
	}
}

// NeedTool returns the path of an outside program a test drives (ffprobe,
// ffmpeg): in CI (CI set) a missing one fails the test, elsewhere it skips
// it, saying which package installs it.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (apt-get install %s)", name, pkg)
		}
		t.Skipf("%s not found (apt-get install %s)", name, pkg)
	}
	return path
}
