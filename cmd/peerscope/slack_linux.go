//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A viewer's node sleeps most of the time and wakes for a few hundred
// short bursts of work a second (a chunk's packets, a child's heartbeat, a
// timer). Each time the process comes out of idle into a system call, the
// Go runtime's sysmon thread resets its tick to 20 µs and sleeps in steps
// of that while the work lasts (runtime.sysmon: "it resets idle and delay
// as a bet that …"); with the kernel's default timer slack of 50 µs every
// such step is a wake-up and two context switches. perf on a relaying
// viewer (scripts/measure-relay.sh) put a quarter of the process's CPU in
// sysmon alone, and its thread made 185 context switches a second.
//
// A larger timer slack lets the kernel round those sleeps up and coalesce
// them with other wake-ups. It is a thread's own setting, inherited by the
// threads it creates, and sysmon is created before any of our code runs;
// so 'watch' sets it on its thread and executes itself again once, and
// every thread of the new image inherits it. The price is timers that fire
// up to that late, a millisecond against playout deadlines of seconds.
//
// PEERSCOPE_TIMERSLACK sets another value (a Go duration), 0 turns it off.
const (
	slackEnv     = "PEERSCOPE_TIMERSLACK"
	slackExecEnv = "PEERSCOPE_TIMERSLACK_EXEC" // set on the re-execution, so it happens once
	watchSlack   = time.Millisecond
)

// slackFor returns the timer slack the command in args runs with (0: the
// kernel's), given the environment.
func slackFor(args []string, getenv func(string) string) (time.Duration, error) {
	if len(args) == 0 || args[0] != "watch" {
		return 0, nil
	}
	v := getenv(slackEnv)
	if v == "" {
		return watchSlack, nil
	}
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Second {
		return 0, fmt.Errorf("%s=%q: want a duration from 0 to 1s", slackEnv, v)
	}
	return d, nil
}

// setTimerSlack gives this process the timer slack its command runs with
// (slackFor). Unless its thread already has as much, it sets it there and
// executes the process again, which only returns on failure.
func setTimerSlack(args []string) error {
	d, err := slackFor(args, os.Getenv)
	if err != nil || d == 0 || os.Getenv(slackExecEnv) != "" {
		return err
	}
	runtime.LockOSThread() // the slack is this thread's, and the new image's
	defer runtime.UnlockOSThread()
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || time.Duration(cur) >= d {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d), 0, 0, 0); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, append(os.Environ(), slackExecEnv+"=1"))
}
