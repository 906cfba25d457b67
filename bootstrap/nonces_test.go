package bootstrap

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestNonceStoreFull: a full nonce memory drops its oldest bucket and
// refuses that time from then on, instead of refusing every request (as
// it did); a nonce seen is refused while its bucket is held; buckets the
// skew no longer allows are dropped on their own.
func TestNonceStoreFull(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	skew := 2 * time.Minute
	s := newNonceStore(skew, 10)
	lowest := func(now time.Time) int64 { return s.bucket(now.Add(-skew)) }
	now := t0
	rec := func(i int, at time.Time) nonceRec { return newNonceRec("peer", fmt.Sprint(i), s.bucket(at)) }
	// Ten nonces signed over the last 100 s, in ten buckets.
	for i := range 10 {
		at := now.Add(-100*time.Second + time.Duration(i)*10*time.Second)
		if err := s.use(rec(i, at), lowest(now)); err != nil {
			t.Fatalf("nonce %d: %v", i, err)
		}
	}
	if err := s.use(rec(3, now.Add(-70*time.Second)), lowest(now)); !errors.Is(err, errNonceUsed) {
		t.Fatalf("a nonce used again: %v", err)
	}
	// Full: a new request signed now still goes through; the oldest
	// bucket (the first nonces) is dropped and its time refused.
	for i := 100; i < 110; i++ {
		if err := s.use(rec(i, now), lowest(now)); err != nil {
			t.Fatalf("a fresh request refused when full (%d): %v", i, err)
		}
		if n, _ := s.size(); n > 10 {
			t.Fatalf("%d nonces held, more than the 10 allowed", n)
		}
	}
	if err := s.use(rec(0, now.Add(-100*time.Second)), lowest(now)); !errors.Is(err, errNonceFloor) {
		t.Fatalf("the replay of an evicted nonce: %v, want errNonceFloor", err)
	}
	if _, evicted := s.size(); evicted == 0 {
		t.Fatal("nothing evicted")
	}
	// Full of this very bucket: a new request is refused until the bucket
	// ends (5 s here), never let through over a nonce dropped.
	if err := s.use(rec(110, now), lowest(now)); !errors.Is(err, errNonceFloor) {
		t.Fatalf("full of the current bucket: %v", err)
	}
	next := now.Add(5 * time.Second)
	if err := s.use(rec(111, next), lowest(next)); err != nil {
		t.Fatalf("in the next bucket: %v", err)
	}
	if err := s.use(rec(105, now), lowest(next)); !errors.Is(err, errNonceFloor) && !errors.Is(err, errNonceUsed) {
		t.Fatalf("a replay from the dropped bucket: %v", err)
	}
	// A request whose own bucket would be the oldest, when full, is the
	// one refused.
	if err := s.use(rec(200, now.Add(-100*time.Second)), lowest(now)); !errors.Is(err, errNonceFloor) {
		t.Fatalf("an old request when full: %v", err)
	}
	// Time passes: the skew's window moves on and old buckets go.
	later := now.Add(5 * time.Minute)
	if err := s.use(rec(300, later), lowest(later)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.size(); n != 1 {
		t.Fatalf("%d nonces held after the window moved on, want 1", n)
	}
}

// TestPeerLimitBeforeNonces: a peer over its rate is refused before its
// nonce is taken, so a flood fills no nonce memory.
func TestPeerLimitBeforeNonces(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newInternalEnv(t, func(c *ServerConfig) { c.RatePeer = Rate{PerSecond: 0.001, Burst: 3} })
		ok, limited := 0, 0
		for i := range 20 {
			r := e.signedRequest(t, "GET", "/api/v1/follows", nil, byte(1))
			_, _, err := e.s.verifyRequest(r, nil)
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrRateLimited):
				limited++
			default:
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if n, _ := e.s.nonces.size(); ok != 3 || limited != 17 || n != 3 {
			t.Fatalf("%d taken, %d limited, %d nonces held; want 3, 17, 3", ok, limited, n)
		}
	})
}

// TestNoncesPruned: the nonces kept in the database go once the skew no
// longer allows their time, with the next write.
func TestNoncesPruned(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newInternalEnv(t, nil)
		ctx := t.Context()
		for i := range 5 {
			_, n, err := e.s.verifyRequest(e.signedRequest(t, "GET", "/api/v1/follows", nil, byte(10+i)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.s.store.saveNonce(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := e.s.store.Count(ctx, "nonces"); n != 5 {
			t.Fatalf("%d nonces kept, want 5", n)
		}
		e.clock.Advance(10 * time.Minute)
		_, n, err := e.s.verifyRequest(e.signedRequest(t, "GET", "/api/v1/follows", nil, 20), nil)
		if err == nil {
			err = e.s.store.saveNonce(ctx, n)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := e.s.store.Count(ctx, "nonces"); n != 1 {
			t.Fatalf("%d nonces kept 10 minutes later, want the new one", n)
		}
	})
}
