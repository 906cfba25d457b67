// Package clock is the one source of time that Peerscope's components take:
// the system clock in production, a Fake in tests, so that time is an input
// and no test waits on the wall clock.
//
// How it flows: a component takes a Clock in its config (nil means
// System{}: OrSystem) and reads time only through it — Now for stamps,
// NewTicker for its timers, Sleep for pacing. A test passes a Fake from
// NewFake and moves it with Advance or Set; the Fake fires the tickers and
// wakes the sleepers whose times it passes, so a test of a day's expiry or
// a ten-second grace takes no wall time.
//
//	component ─► Clock.Now / NewTicker / Sleep ─► System (time package) | Fake (Advance, Set)
package clock
