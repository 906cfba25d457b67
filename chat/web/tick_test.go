package web_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/internal/clock"
)

// TestIdleServerSleeps: a server with no stream open, whose onTick has
// nothing due, does not wake while injected time passes (it woke every
// DefaultEvery, 120 times a minute); Wake makes it tick at once, a time
// onTick returns is met, and a stream opening wakes it.
func TestIdleServerSleeps(t *testing.T) {
	room := broadcasterRoom(t)
	clk := newStepClock(time.Now())
	s := web.New(web.Config{Room: func() *chat.Room { return room }, Clock: clk})
	url := serve(t, s)
	ticks := make(chan time.Time, 1024)
	var mu sync.Mutex
	var due time.Time // what onTick returns
	setDue := func(t time.Time) { mu.Lock(); due = t; mu.Unlock() }
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		s.Run(context.Background(), func(now time.Time) time.Time {
			mu.Lock()
			next := due
			mu.Unlock()
			ticks <- now
			return next
		})
	}()
	defer func() {
		_ = room.Close()
		<-ran
	}()
	<-ticks // Run's first, at once

	// A minute with nothing due, once Run has armed its ticker for it.
	start := clk.Now()
	clk.waitArmed(t, func(next time.Time) bool { return next.Sub(start) > time.Hour })
	wakes := 0
	for range 120 {
		wakes += clk.Advance(t, web.DefaultEvery)
	}
	ticked := drain(ticks)
	t.Logf("%d wake-ups, %d ticks in an idle minute", wakes, ticked)
	if wakes > 0 || ticked > 0 {
		t.Fatalf("an idle server woke %d times (%d ticks) in a minute, want none", wakes, ticked)
	}

	// Wake: a tick at once, the clock standing still; onTick says it is
	// next due in 5 s.
	at := clk.Now()
	setDue(at.Add(5 * time.Second))
	s.Wake()
	if now := waitTick(t, ticks); !now.Equal(at) {
		t.Fatalf("Wake ticked at %v, want at once (%v)", now.Sub(at), at)
	}
	setDue(time.Time{})
	clk.waitArmed(t, func(next time.Time) bool { return next.Equal(at.Add(5 * time.Second)) })
	var got []time.Duration // when the ticker fired (onTick reads the clock later)
	for i := range 20 {     // 10 s
		if clk.Advance(t, web.DefaultEvery) > 0 {
			got = append(got, time.Duration(i+1)*web.DefaultEvery)
		}
	}
	if len(got) != 1 || got[0] != 5*time.Second {
		t.Fatalf("onTick's due time 5 s on: ticks at %v", got)
	}
	waitTick(t, ticks)

	// A stream opening wakes the server: it is told the live count.
	viewer := stream(t, url+"events")
	for deadline := time.Now().Add(20 * time.Second); ; {
		if e, ok := nextWithin(viewer, "viewers", 50*time.Millisecond); ok {
			t.Logf("a new stream was told %s", e.data)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a new stream was not told the live count in 20 s")
		}
		clk.Advance(t, web.DefaultEvery) // the Wake may have come within Every of the last tick
	}
}

// nextWithin returns the next event named name if it comes within d.
func nextWithin(ch <-chan event, name string, d time.Duration) (event, bool) {
	timeout := time.After(d)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return event{}, false
			}
			if e.name == name {
				return e, true
			}
		case <-timeout:
			return event{}, false
		}
	}
}

func waitTick(t *testing.T, ticks <-chan time.Time) time.Time {
	t.Helper()
	select {
	case now := <-ticks:
		return now
	case <-time.After(20 * time.Second):
		t.Fatal("no tick in 20 s")
		return time.Time{}
	}
}

// drain returns how many ticks wait in ticks.
func drain(ticks <-chan time.Time) int {
	return len(drain2(ticks))
}

func drain2(ticks <-chan time.Time) []time.Time {
	var out []time.Time
	for {
		select {
		case now := <-ticks:
			out = append(out, now)
		default:
			return out
		}
	}
}

// stepClock is a clock whose tickers hand each tick to their reader
// before Advance returns, so a test counts the ticks a goroutine took (a
// copy of chat's, tick_test.go).
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*stepTicker
}

var _ clock.Clock = (*stepClock)(nil)

type stepTicker struct {
	c       chan time.Time
	stopped chan struct{}
	once    sync.Once
	every   time.Duration
	next    time.Time
}

func (t *stepTicker) C() <-chan time.Time { return t.c }
func (t *stepTicker) Stop()               { t.once.Do(func() { close(t.stopped) }) }

func newStepClock(start time.Time) *stepClock { return &stepClock{now: start} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) NewTicker(d time.Duration) clock.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &stepTicker{c: make(chan time.Time), stopped: make(chan struct{}), every: d, next: c.now.Add(d)}
	c.tickers = append(c.tickers, t)
	return t
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	return errors.New("stepClock: no Sleep")
}

// waitArmed waits until every live ticker's next tick satisfies ok (called
// with the clock locked): the goroutine that owns them has re-armed them.
func (c *stepClock) waitArmed(t *testing.T, ok func(next time.Time) bool) {
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
func (c *stepClock) Advance(t *testing.T, d time.Duration) int {
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
