package chat

import (
	"crypto/rand"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// limiter is a token bucket per (sender, kind), kept as GCRA: one time per
// bucket, the "theoretical arrival time" when the bucket would be full
// again. A sender whose bucket is full has no entry, so the map holds only
// the senders active in the last few seconds.
type limiter struct {
	tat map[limitKey]time.Time
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
	if l.tat == nil {
		l.tat = make(map[limitKey]time.Time)
	}
	key := limitKey{p, k}
	tat, ok := l.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	// Room for one more if the bucket is not "further behind" than the
	// burst allows.
	if tat.Sub(now) > time.Duration(r.Burst-1)*r.Every {
		return false
	}
	if take {
		if len(l.tat) >= maxBuckets {
			l.sweep(now)
		}
		l.tat[key] = tat.Add(r.Every)
	}
	return true
}

// sweep drops the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	for k, t := range l.tat {
		if !t.After(now) {
			delete(l.tat, k)
		}
	}
}

// seed returns 32 bytes from crypto/rand for a ChaCha8 generator.
func seed() (s [32]byte) {
	_, _ = rand.Read(s[:])
	return s
}
