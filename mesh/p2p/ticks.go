package p2p

import "time"

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

// The ticker armed for nextDue is a clock.Pacer (the chat room's owner
// keeps one too).

// nextDue is when the owner next has anything to do on a tick: the
// machine's next deadline, or reaping idle writers.
func (n *Tree) nextDue() time.Time {
	due := n.sm.NextTick()
	if r := n.reaped.Add(time.Second); len(n.writers) > 0 && r.Before(due) {
		due = r
	}
	return due
}
