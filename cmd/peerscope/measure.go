package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
)

// startCPUProfile writes a CPU profile of the rest of the run to path (none
// if path is empty). The measuring commands (bench, bench --mode directory,
// sim) share it; stop ends the profile and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// printExtra writes a report's extra figures on one line, sorted by name,
// under the table that bench and sim print for people.
func printExtra(w io.Writer, extra map[string]float64) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "extra:")
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%s", k, strconv.FormatFloat(extra[k], 'f', -1, 64))
	}
	fmt.Fprintln(w)
}
