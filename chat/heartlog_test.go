package chat

import (
	"slices"
	"testing"
	"time"
)

// TestHeartLog: hearts are counted in the second of their moment; one a
// little before the first second counted (a tapper behind the stream, its
// tap counted after another's) is put before it; a clock stepping back
// further counts in the first second, and nothing is counted past
// MaxHeartSeconds.
func TestHeartLog(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var l HeartLog
	l.add(t0.Add(300*time.Millisecond), 2)
	l.add(t0.Add(3500*time.Millisecond), 4)
	l.add(t0.Add(3900*time.Millisecond), 1)
	l.add(t0.Add(-time.Second), 1)
	l.add(t0.Add(-maxLogBefore-time.Minute), 6)
	l.add(t0.Add(MaxHeartSeconds*time.Second), 9)
	var big HeartLog
	big.add(t0, 3)
	big.add(t0, 1<<64-1) // a sum that would wrap saturates
	if big.Counts[0] != 1<<32-1 {
		t.Fatalf("3 and 2^64-1 hearts in a second: %d", big.Counts[0])
	}
	if !l.From.Equal(t0.Add(-time.Second)) || !slices.Equal(l.Counts, []uint32{7, 2, 0, 0, 5}) || l.Total() != 14 {
		t.Fatalf("log from %v: %v (total %d)", l.From, l.Counts, l.Total())
	}
}

// TestSwarmHeartMoments: the broadcaster logs hearts for the replay at the
// moment their tappers watched, not when they reached it: over the tree by
// the second of their moment, over the topic at the mean of theirs. Taps
// that said nothing, or whose moment their tapper's clock finds further
// behind than the tree carries, are placed where they arrive.
func TestSwarmHeartMoments(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: nil, bob: nil})
	s.ms[alice.id].cfg.Tap = func(int, time.Time) {} // alice is in a tree; bob is not
	s.advance(2 * time.Second)
	tapped := s.now
	watched := tapped.Add(-3 * time.Second) // alice's screen: 3 s behind
	s.ms[alice.id].heart(tapped, 4, watched)
	s.ms[alice.id].heart(tapped, 2, time.Time{})
	s.ms[alice.id].heart(tapped, 1, tapped.Add(-time.Minute))
	bobWatched := tapped.Add(-5 * time.Second).Truncate(time.Second)
	s.ms[bob.id].heart(tapped, 3, bobWatched)
	s.ms[bob.id].heart(tapped, 1, bobWatched.Add(800*time.Millisecond)) // the mean: 200 ms in
	for range 3 {
		s.advance(time.Second)
	}
	l := s.ms[broadcasterPeer.id].heartLog
	at := func(w time.Time) uint32 {
		i := int(w.Truncate(time.Second).Sub(l.From) / time.Second)
		if i < 0 || i >= len(l.Counts) {
			return 0
		}
		return l.Counts[i]
	}
	if at(watched) != 4 || at(bobWatched) != 4 || l.Total() != 11 {
		t.Fatalf("log from %v: %v; want 4 at %v (alice's frame), 4 at %v (bob's), 11 in all",
			l.From, l.Counts, watched, bobWatched)
	}
	for w := l.From; w.Before(tapped.Truncate(time.Second)); w = w.Add(time.Second) {
		if n := at(w); n > 0 && !w.Equal(watched.Truncate(time.Second)) && !w.Equal(bobWatched) {
			t.Fatalf("%d hearts at %v, before they were tapped: %v", n, w, l.Counts)
		}
	}
}

// TestHeartMomentsUntrusted: what the tree's moment counters and a topic
// heart's moment claim is bounded. Moments rising past the total's rise (a
// liar below) are not believed: the rise is placed at arrival. A topic
// moment ahead of the broadcaster's clock is placed now, one far behind at
// the maxStreamLag before now, so neither reaches outside the broadcast's
// last two minutes.
func TestHeartMomentsUntrusted(t *testing.T) {
	now := time.Unix(1700000100, 0)
	var m machine
	liar := HeartSums{Total: 5}
	liar.Moments[3] = 1000
	m.logTreeHearts(now, liar)
	if !m.heartLog.From.Equal(now) || !slices.Equal(m.heartLog.Counts, []uint32{5}) {
		t.Fatalf("a liar's moments: log from %v: %v", m.heartLog.From, m.heartLog.Counts)
	}
	// Moments whose sum would wrap round to fewer than the hearts are
	// not believed either.
	var w machine
	wrap := HeartSums{Total: 5}
	wrap.Moments[0], wrap.Moments[1] = 1<<63, 1<<63+3
	w.logTreeHearts(now, wrap)
	if !slices.Equal(w.heartLog.Counts, []uint32{5}) || !w.heartLog.From.Equal(now) {
		t.Fatalf("wrapping moments: log from %v: %v", w.heartLog.From, w.heartLog.Counts)
	}
	// A stale read (the total lower than already logged) adds nothing.
	m.logTreeHearts(now.Add(time.Second), HeartSums{Total: 2})
	if m.heartLog.Total() != 5 {
		t.Fatalf("a stale read logged: %v", m.heartLog.Counts)
	}
	m.logTopicHearts(now, &wireHeart{Count: 2, At: now.Add(time.Hour).UnixNano()})
	m.logTopicHearts(now, &wireHeart{Count: 3, At: now.Add(-10 * 365 * 24 * time.Hour).UnixNano()})
	l := m.heartLog
	if first := now.Add(-maxStreamLag); !l.From.Equal(first) || l.Counts[0] != 3 || l.Counts[len(l.Counts)-1] != 7 || l.Total() != 10 {
		t.Fatalf("log from %v (want %v): %d seconds, first %d, last %d, total %d", l.From, first, len(l.Counts), l.Counts[0], l.Counts[len(l.Counts)-1], l.Total())
	}
}
