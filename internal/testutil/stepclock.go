package testutil

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/clock"
)

// StepClock is a clock whose tickers hand each tick to their reader before
// Advance returns, so a test counts the ticks a goroutine took: how often
// an idle loop wakes.
type StepClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*stepTicker
}

var _ clock.Clock = (*StepClock)(nil)

type stepTicker struct {
	c       chan time.Time
	stopped chan struct{}
	once    sync.Once
	every   time.Duration
	next    time.Time
}

func (t *stepTicker) C() <-chan time.Time { return t.c }
func (t *stepTicker) Stop()               { t.once.Do(func() { close(t.stopped) }) }

// NewStepClock returns a StepClock at start.
func NewStepClock(start time.Time) *StepClock { return &StepClock{now: start} }

func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *StepClock) NewTicker(d time.Duration) clock.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &stepTicker{c: make(chan time.Time), stopped: make(chan struct{}), every: d, next: c.now.Add(d)}
	c.tickers = append(c.tickers, t)
	return t
}

func (c *StepClock) Sleep(ctx context.Context, d time.Duration) error {
	return errors.New("StepClock: no Sleep")
}

// WaitArmed waits until every live ticker's next tick satisfies ok (called
// with the clock locked): the goroutine that owns them has re-armed them.
func (c *StepClock) WaitArmed(t testing.TB, ok func(next time.Time) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		all := true
		for _, tk := range c.tickers {
			select {
			case <-tk.stopped:
				continue
			default:
			}
			all = all && ok(tk.next)
		}
		c.mu.Unlock()
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the tickers were not armed as expected in 20 s")
		}
	}
}

// Advance moves the clock by d and hands each ticker whose time it passed
// one tick, waiting until its reader takes it (or stops it); it returns
// how many were taken.
func (c *StepClock) Advance(t testing.TB, d time.Duration) int {
	t.Helper()
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*stepTicker
	live := c.tickers[:0]
	for _, tk := range c.tickers {
		select {
		case <-tk.stopped:
			continue
		default:
		}
		live = append(live, tk)
		if !now.Before(tk.next) {
			for !now.Before(tk.next) {
				tk.next = tk.next.Add(tk.every)
			}
			due = append(due, tk)
		}
	}
	c.tickers = live
	c.mu.Unlock()
	taken := 0
	for _, tk := range due {
		select {
		case tk.c <- now:
			taken++
		case <-tk.stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("a tick nobody took in 20 s")
		}
	}
	return taken
}
