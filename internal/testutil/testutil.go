package testutil

import (
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
