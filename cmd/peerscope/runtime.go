package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// A viewer's node is light: a broadcast at a few Mb/s in, the same out to
// a few children, under 2 % of a core. The Go runtime's defaults are sized
// for a busy server, and on such a process they cost more than the work:
//
//   - GOMAXPROCS: with one P per core the scheduler wakes a second thread
//     for nearly every goroutine made runnable (a chunk, a heartbeat, a
//     timer), and sysmon and the idle threads trade futex wake-ups and
//     context switches, which perf showed as a third of the process's CPU.
//     One P serves the whole node: a relaying viewer measured 1.75 % of a
//     core with two, 1.38 % with one (scripts/measure-relay.sh, the same
//     machine back to back; docs/BENCHMARKS.md, "What a light node costs").
//   - GOGC: the live heap is small (6 to 8 MB, most of it the 12 s of the
//     broadcast kept), and the default 100 lets the heap grow to twice it.
//     At 50 a collection comes every 4 s instead of every 8 s, each about
//     2 ms of CPU (under 0.1 % of a core), and the node holds 3 to 4 MiB
//     less.
//
// Either is left alone when its environment variable is set.
const (
	lightProcs     = 1
	lightGCPercent = 50
)

// runtimeFor returns the GOMAXPROCS and GOGC that the command in args runs
// with (0: the runtime's own), given the environment.
func runtimeFor(args []string, getenv func(string) string) (procs, gcPercent int) {
	if len(args) == 0 || args[0] != "watch" {
		return 0, 0
	}
	if getenv("GOMAXPROCS") == "" {
		procs = lightProcs
	}
	if getenv("GOGC") == "" {
		gcPercent = lightGCPercent
	}
	return procs, gcPercent
}

// sizeRuntime applies runtimeFor to this process. main calls it, not run:
// tests run commands in their own process, whose runtime is theirs.
func sizeRuntime(args []string) {
	procs, gc := runtimeFor(args, os.Getenv)
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
	if gc > 0 {
		debug.SetGCPercent(gc)
	}
}
