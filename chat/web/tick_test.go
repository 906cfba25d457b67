package web_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/internal/testutil"
)

// TestIdleServerSleeps: a server with no stream open, whose onTick has
// nothing due, does not wake while injected time passes (it woke every
// DefaultEvery, 120 times a minute); Wake makes it tick at once, a time
// onTick returns is met, and a stream opening wakes it.
func TestIdleServerSleeps(t *testing.T) {
	room := broadcasterRoom(t)
	clk := testutil.NewStepClock(time.Now())
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
	clk.WaitArmed(t, func(next time.Time) bool { return next.Sub(start) > time.Hour })
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
	clk.WaitArmed(t, func(next time.Time) bool { return next.Equal(at.Add(5 * time.Second)) })
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
