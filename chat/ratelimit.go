package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// limiter is a token bucket per (sender, kind): golang.org/x/time/rate's,
// driven with the machine's now (AllowN), never the wall clock. A Rate of
// one message per Every in bursts of Burst is rate.Every(Every) with burst
// Burst, which allows exactly what chat 1.0.0's buckets (GCRA, one
// "theoretical arrival time" per bucket) allowed: a message fits when the
// bucket holds a whole token, and refused messages cost nothing.
// Differences, none of which an honest sender meets: the tokens are a
// float64 (1.0.0 counted in nanoseconds), so a boundary may move by about
// a nanosecond (far below the jitter between two peers' clocks, which
// already makes them judge rates a little differently: what is over a
// rate is ignored, not rejected); and when now goes back (the clock was set back), 1.0.0's
// bucket stayed as far behind as it was, while this one refills from the
// earlier time once now moves on, crediting the sender the time it skipped.
//
// The buckets of senders gone quiet are full; past maxBuckets they are
// swept (a full bucket is the same as none), so the map holds only the
// senders active in the last few seconds.
type limiter struct {
	buckets map[limitKey]*rate.Limiter
}

type limitKey struct {
	p peer.ID
	k kind
}

// maxBuckets bounds the map; past it, full buckets are swept.
const maxBuckets = 1 << 16

// allow reports whether a message of kind k from p fits rate r at now and,
// if take, charges it.
func (l *limiter) allow(now time.Time, p peer.ID, k kind, r Rate, take bool) bool {
	key := limitKey{p, k}
	b := l.buckets[key]
	if !take {
		return b == nil || fits(b, now)
	}
	if b == nil {
		if l.buckets == nil {
			l.buckets = make(map[limitKey]*rate.Limiter)
		}
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = rate.NewLimiter(rate.Every(r.Every), r.Burst) // full
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// fits says whether b has room for one more message at now, as AllowN
// decides it: when the part of a token it lacks (a float64 that rounding
// may leave a hair short of a whole token) would take less than a
// nanosecond to refill.
func fits(b *rate.Limiter, now time.Time) bool {
	lack := 1 - b.TokensAt(now)
	return lack <= 0 || time.Duration(lack/float64(b.Limit())*float64(time.Second)) == 0
}

// sweep drops the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
}
