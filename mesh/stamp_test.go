package mesh

import (
	"strings"
	"testing"
	"time"
)

// TestStampKeepsMonotonic: a member's deadline taken from a real clock
// comes back with its monotonic reading, so setting the wall clock moves
// no ban; one from a clock without it (the simulator's) comes back exact.
func TestStampKeepsMonotonic(t *testing.T) {
	now := time.Now()
	until := stampOf(now.Add(2 * time.Minute)).time()
	if !strings.Contains(until.String(), "m=") {
		t.Fatalf("a stamp of %v came back without a monotonic reading: %v", now, until)
	}
	if got := until.Sub(now); got != 2*time.Minute {
		t.Fatalf("deadline %v after now, want 2m", got)
	}
	virtual := time.Date(2025, 1, 1, 0, 0, 0, 123, time.UTC)
	if got := stampOf(virtual).time(); !got.Equal(virtual) || got.UnixNano() != virtual.UnixNano() {
		t.Fatalf("virtual time %v came back as %v", virtual, got)
	}
	if stampOf(time.Time{}) != 0 || !stamp(0).time().IsZero() {
		t.Fatal("the zero time is not the zero stamp")
	}
}
