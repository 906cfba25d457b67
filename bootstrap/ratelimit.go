package bootstrap

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket's refill per second and its burst. PerSecond ≤ 0
// means no limit (ServerConfig fills a zero Rate with its default first).
type Rate struct {
	PerSecond float64
	Burst     int
}

// share is one replica's part of r when n processes serve one community
// (ServerConfig.Replicas): the rate and the burst divided by n, a burst of
// at least 1. Partitioned rather than shared in the database, which would
// cost a write per request. What a client gets: r from all the replicas
// together when the balancer spreads its requests, never more (but for a
// burst below n: n bursts of 1); r/n when the balancer keeps it on one
// replica (sticky routing), the price of keeping the limits in memory.
func (r Rate) share(n int) Rate {
	if n <= 1 || r.PerSecond <= 0 {
		return r
	}
	return Rate{PerSecond: r.PerSecond / float64(n), Burst: max(1, r.Burst/n)}
}

// limiter keeps one token bucket (a rate.Limiter) per key — an IP, a peer,
// an account — on the injected clock: every call passes its now to
// AllowN. Memory is bounded: when the map reaches max keys, the buckets
// that are full again (nobody is being held back by them) are dropped.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	b    map[string]*rate.Limiter
	max  int
}

// maxLimiterKeys bounds the keys one limiter holds before it prunes.
const maxLimiterKeys = 100_000

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r, b: make(map[string]*rate.Limiter), max: maxLimiterKeys}
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
		// A new bucket starts full.
		b = rate.NewLimiter(rate.Limit(l.rate.PerSecond), l.rate.Burst)
		l.b[key] = b
	}
	return b.AllowN(now, 1)
}

// prune drops the buckets that are full again at now.
func (l *limiter) prune(now time.Time) {
	for k, b := range l.b {
		if b.TokensAt(now) >= float64(l.rate.Burst) {
			delete(l.b, k)
		}
	}
}
