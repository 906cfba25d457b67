package bootstrap

import (
	"sync"
	"time"
)

// Rate is a token bucket's refill per second and its burst. A zero Rate
// means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// limiter keeps one token bucket per key (an IP, a peer, an account), on
// the injected clock. Idle buckets are dropped when the map grows.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	b    map[string]*bucket
	max  int
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r, b: make(map[string]*bucket), max: 100_000}
}

// allow takes a token for key at now.
func (l *limiter) allow(key string, now time.Time) bool {
	if l == nil || l.rate.PerSecond <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b[key]
	if b == nil {
		if len(l.b) >= l.max {
			l.prune(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.b[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(float64(l.rate.Burst), b.tokens+dt*l.rate.PerSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune drops the buckets that are full again (nobody is being held back
// by them).
func (l *limiter) prune(now time.Time) {
	for k, b := range l.b {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate.PerSecond >= float64(l.rate.Burst) {
			delete(l.b, k)
		}
	}
}
