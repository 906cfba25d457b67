package p2p

import (
	"time"

	"github.com/peerscope/peerscope/internal/clock"
)

// The owner goroutine ticks the state machine when it has something due
// (mesh.Machine.NextTick: a heartbeat, a status, a timeout, a pull), not on
// a fixed beat: a viewer with a parent and three children has a deadline
// every 250 ms or so, and the fixed 50 ms ticker woke it 20 times a second
// for nothing. The tick interval (WithTickInterval) stays the floor: a
// deadline is met at most one interval late, as on the fixed beat, and
// ticks come no closer together than it.

// maxTickWait bounds how long the owner sleeps with nothing due (the
// writers' reaping runs every second besides).
const maxTickWait = time.Second

// pacer keeps the ticker armed for the next due tick.
type pacer struct {
	clk   clock.Clock
	floor time.Duration
	t     clock.Ticker
	every time.Duration
	armed time.Time // when t fires next
}

func newPacer(clk clock.Clock, floor time.Duration) *pacer {
	p := &pacer{clk: clk, floor: floor}
	p.arm(clk.Now(), floor)
	return p
}

func (p *pacer) C() <-chan time.Time { return p.t.C() }

func (p *pacer) Stop() { p.t.Stop() }

func (p *pacer) arm(now time.Time, d time.Duration) {
	if p.t != nil {
		p.t.Stop()
	}
	p.t, p.every, p.armed = p.clk.NewTicker(d), d, now.Add(d)
}

// wait returns how long from now until due, between the floor and
// maxTickWait.
func (p *pacer) wait(now, due time.Time) time.Duration {
	return min(max(due.Sub(now), p.floor), maxTickWait)
}

// ticked re-arms the ticker after a tick for what is due next.
func (p *pacer) ticked(now, due time.Time) {
	if d := p.wait(now, due); d != p.every {
		p.arm(now, d)
	} else {
		p.armed = now.Add(d)
	}
}

// changed re-arms the ticker after any other input, should something now
// be due before it fires.
func (p *pacer) changed(now, due time.Time) {
	if d := p.wait(now, due); now.Add(d).Before(p.armed) {
		p.arm(now, d)
	}
}

// nextDue is when the owner next has anything to do on a tick: the
// machine's next deadline, or reaping idle writers.
func (n *Tree) nextDue() time.Time {
	due := n.sm.NextTick()
	if r := n.reaped.Add(time.Second); len(n.writers) > 0 && r.Before(due) {
		due = r
	}
	return due
}
