package bootstrap

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// Nonces of signed requests. A request is taken only if its signed time is
// within ClockSkew of the bootstrap's clock and its nonce was not seen:
// the nonces are kept by the bucket of their signed time (buckets of a
// 24th of the skew), in memory for the check and in the database
// (table nonces) before the request is acted on, so a request captured
// before the bootstrap was killed is still refused after its restart.
// Buckets the skew no longer allows are dropped whole. When the memory is
// full, the oldest bucket is dropped too and its time refused from then
// on (the floor): requests signed that long ago must be signed again, but
// every other request still goes through, and no replay does.

// nonceRec is a nonce as kept: a hash of the peer and the nonce, and the
// bucket of the request's signed time.
type nonceRec struct {
	k      [16]byte
	bucket int64
}

func newNonceRec(peer, nonce string, bucket int64) nonceRec {
	sum := sha256.Sum256([]byte(peer + "\x00" + nonce))
	var r nonceRec
	copy(r.k[:], sum[:16])
	r.bucket = bucket
	return r
}

// nonceBuckets is how many buckets the skew spans (5 s each at the
// default 2 min): when the memory is full of the current bucket alone, new
// requests are refused until it ends (a replay never goes through).
const nonceBuckets = 24

// defaultMaxNonces bounds the nonces kept in memory (about 60 bytes each).
const defaultMaxNonces = 1 << 20

// nonceStore is the in-memory side.
type nonceStore struct {
	mu      sync.Mutex
	width   time.Duration
	buckets map[int64]map[[16]byte]struct{}
	n, max  int
	floor   int64 // buckets below it are refused
	evicted uint64
}

func newNonceStore(skew time.Duration, max int) *nonceStore {
	return &nonceStore{width: max1(skew/nonceBuckets, time.Millisecond), buckets: map[int64]map[[16]byte]struct{}{}, max: max}
}

func max1(d, m time.Duration) time.Duration {
	if d < m {
		return m
	}
	return d
}

// bucket is the bucket of a signed time.
func (s *nonceStore) bucket(t time.Time) int64 { return t.UnixNano() / int64(s.width) }

var (
	errNonceUsed  = fmt.Errorf("%w: nonce used before", ErrUnauthenticated)
	errNonceFloor = fmt.Errorf("%w: signed too long ago for the bootstrap's nonce memory, which is full: sign the request again", ErrUnauthenticated)
)

// use takes a nonce in its bucket at now (lowest is the oldest bucket the
// skew allows at now): errNonceUsed if it was taken, errNonceFloor if its
// bucket was dropped for room.
func (s *nonceStore) use(r nonceRec, lowest int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for b, m := range s.buckets {
		if b < lowest {
			s.n -= len(m)
			delete(s.buckets, b)
		}
	}
	if r.bucket < s.floor {
		return errNonceFloor
	}
	m := s.buckets[r.bucket]
	if _, ok := m[r.k]; ok {
		return errNonceUsed
	}
	for s.n >= s.max {
		// Full: drop the oldest bucket and refuse its time from now on.
		// If the request's own bucket is the oldest, it is the one
		// refused: newer requests keep going through.
		oldest, ok := s.oldest()
		if !ok || oldest >= r.bucket {
			return errNonceFloor
		}
		s.n -= len(s.buckets[oldest])
		delete(s.buckets, oldest)
		s.floor = oldest + 1
		s.evicted++
	}
	if m == nil {
		m = map[[16]byte]struct{}{}
		s.buckets[r.bucket] = m
	}
	m[r.k] = struct{}{}
	s.n++
	return nil
}

// oldest returns the oldest bucket held (callers hold mu).
func (s *nonceStore) oldest() (int64, bool) {
	var o int64
	ok := false
	for b := range s.buckets {
		if !ok || b < o {
			o, ok = b, true
		}
	}
	return o, ok
}

// load takes the nonces kept in the database at a start.
func (s *nonceStore) load(recs []nonceRec, lowest int64) {
	for _, r := range recs {
		if r.bucket >= lowest {
			_ = s.use(r, lowest)
		}
	}
}

// size returns the nonces held and the buckets dropped for room.
func (s *nonceStore) size() (int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.evicted
}
