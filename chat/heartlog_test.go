package chat

import (
	"slices"
	"testing"
	"time"
)

// TestHeartLog: hearts are counted in the second they reach the
// broadcaster, a clock stepping back counts in the first second, and
// nothing is counted past MaxHeartSeconds.
func TestHeartLog(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var l HeartLog
	l.add(t0.Add(300*time.Millisecond), 2)
	l.add(t0.Add(3500*time.Millisecond), 4)
	l.add(t0.Add(3900*time.Millisecond), 1)
	l.add(t0.Add(-time.Second), 1)
	l.add(t0.Add(MaxHeartSeconds*time.Second), 9)
	if !l.From.Equal(t0) || !slices.Equal(l.Counts, []uint32{3, 0, 0, 5}) || l.Total() != 8 {
		t.Fatalf("log from %v: %v (total %d)", l.From, l.Counts, l.Total())
	}
}
