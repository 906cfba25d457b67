package bootstrap

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiter: each key has its own bucket of Burst tokens refilled at
// PerSecond on the clock it is given; a full map drops the buckets that
// are full again and keeps those holding someone back.
func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(Rate{PerSecond: 2, Burst: 3})
	for i := range 3 {
		if !l.allow("a", t0) {
			t.Fatalf("token %d of the burst refused", i+1)
		}
	}
	if l.allow("a", t0) {
		t.Fatal("a fourth token at once")
	}
	if !l.allow("b", t0) {
		t.Fatal("another key shares the first one's bucket")
	}
	if l.allow("a", t0.Add(400*time.Millisecond)) {
		t.Fatal("a token before its refill (0.8 of one)")
	}
	if !l.allow("a", t0.Add(500*time.Millisecond)) || l.allow("a", t0.Add(500*time.Millisecond)) {
		t.Fatal("not exactly one token after half a second at 2/s")
	}

	l.max = 3
	l.allow("c", t0)
	// At t0+1s: a has 2 of 3 tokens (held back), b and c are full again.
	later := t0.Add(time.Second)
	if !l.allow("d", later) {
		t.Fatal("a new key refused")
	}
	if _, ok := l.b["a"]; !ok || len(l.b) != 2 {
		keys := fmt.Sprint(len(l.b))
		for k := range l.b {
			keys += " " + k
		}
		t.Fatalf("after pruning: %s; want a and d", keys)
	}
	if (&limiter{rate: Rate{PerSecond: -1}}).allow("x", t0) != true {
		t.Fatal("a limit that is off refused")
	}
}
