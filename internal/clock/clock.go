package clock

import (
	"context"
	"time"
)

// Clock tells the time, ticks and sleeps.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that fires every d.
	NewTicker(d time.Duration) Ticker
	// Sleep waits for d, or until ctx ends (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// Ticker is a time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// System is the real clock.
type System struct{}

var _ Clock = System{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTicker returns a time.Ticker.
func (System) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

// Sleep waits for d or for ctx.
func (System) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// SleepUntil waits on c until t (at once if t has passed), or until ctx
// ends; it reports whether t came with ctx still live.
func SleepUntil(ctx context.Context, c Clock, t time.Time) bool {
	return c.Sleep(ctx, t.Sub(c.Now())) == nil
}

// OrSystem returns c, or the system clock when c is nil: what a component's
// New does with a zero config's clock.
func OrSystem(c Clock) Clock {
	if c == nil {
		return System{}
	}
	return c
}
