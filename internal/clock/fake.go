package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a clock that moves only when told (Advance, Set). Its tickers fire
// and its sleepers wake as Advance passes their times. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	sleeps  []fakeSleep
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock by d, firing the tickers and waking the sleepers
// whose times it passes (a ticker fires at most once per Advance: its channel
// holds one tick, as a time.Ticker's does).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	now := f.now
	for _, t := range f.tickers {
		if t.stopped || now.Before(t.next) {
			continue
		}
		for !now.Before(t.next) {
			t.next = t.next.Add(t.every)
		}
		select {
		case t.c <- now:
		default:
		}
	}
	kept := f.sleeps[:0]
	for _, s := range f.sleeps {
		if now.Before(s.until) {
			kept = append(kept, s)
		} else {
			close(s.wake)
		}
	}
	f.sleeps = kept
	f.mu.Unlock()
}

// Set moves the clock to t (forward only).
func (f *Fake) Set(t time.Time) {
	if d := t.Sub(f.Now()); d > 0 {
		f.Advance(d)
	}
}

// NewTicker returns a ticker that fires as Advance passes each multiple of d.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{f: f, every: d, next: f.now.Add(d), c: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	return t
}

// Sleep waits until Advance has moved the clock by d, or ctx ends.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	f.mu.Lock()
	s := fakeSleep{until: f.now.Add(d), wake: make(chan struct{})}
	f.sleeps = append(f.sleeps, s)
	f.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type fakeTicker struct {
	f       *Fake
	every   time.Duration
	next    time.Time
	c       chan time.Time
	stopped bool
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.stopped = true
	select { // as a time.Ticker since Go 1.23: no stale tick after Stop
	case <-t.c:
	default:
	}
}

type fakeSleep struct {
	until time.Time
	wake  chan struct{}
}
