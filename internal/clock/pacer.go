package clock

import "time"

// Pacer is a ticker kept armed for when its owner next has anything due: an
// owner goroutine that ticks a state machine (mesh.Machine.NextTick, the
// chat room's machine) asks the machine after each tick and each other
// input when it is next due, and tells the Pacer (Ticked, Changed), which
// re-creates its ticker when that time moves. The Clock has tickers only,
// so a Pacer is a ticker re-armed, not a timer.
//
// Floor is the least time between ticks, and how late a deadline may be
// met: a due time already past fires a floor after the input that made it
// due. Max, if positive, bounds how long the owner sleeps with nothing due.
type Pacer struct {
	clk   Clock
	floor time.Duration
	max   time.Duration
	t     Ticker
	every time.Duration
	armed time.Time // when t fires next
}

// NewPacer returns a Pacer whose first tick comes a floor from now.
func NewPacer(clk Clock, floor, max time.Duration) *Pacer {
	p := &Pacer{clk: clk, floor: floor, max: max}
	p.arm(clk.Now(), floor)
	return p
}

// C is the channel of ticks.
func (p *Pacer) C() <-chan time.Time { return p.t.C() }

// Stop stops the ticker.
func (p *Pacer) Stop() { p.t.Stop() }

func (p *Pacer) arm(now time.Time, d time.Duration) {
	if p.t != nil {
		p.t.Stop()
	}
	p.t, p.every, p.armed = p.clk.NewTicker(d), d, now.Add(d)
}

// wait returns how long from now until due, no less than the floor and no
// more than max (if set). A due time past the clock's range (a Machine's
// "never") saturates: the ticker is armed centuries ahead.
func (p *Pacer) wait(now, due time.Time) time.Duration {
	d := max(due.Sub(now), p.floor)
	if p.max > 0 {
		d = min(d, p.max)
	}
	return d
}

// Ticked re-arms the ticker after a tick for what is due next.
func (p *Pacer) Ticked(now, due time.Time) {
	if d := p.wait(now, due); d != p.every {
		p.arm(now, d)
	} else {
		p.armed = now.Add(d)
	}
}

// Changed re-arms the ticker after any other input, should something now
// be due before it fires.
func (p *Pacer) Changed(now, due time.Time) {
	if d := p.wait(now, due); now.Add(d).Before(p.armed) {
		p.arm(now, d)
	}
}
