// Package report is the one JSON shape that `peerscope bench` (real libp2p
// hosts) and `peerscope sim` (the simulator) print, and the arithmetic both
// use to fill it, so their figures can be compared line by line.
//
// How data flows: a run (internal/bench or mesh/sim) collects its
// measurements in Samples (Add, AddDuration) and counters, fills one Report
// with their Quantiles and the Ratios between byte counts (Ratio), puts
// what has no field of its own in Extra, and cmd/peerscope prints it as a
// table or as one line of JSON (Report.JSON), the line BENCHMARKS.md
// quotes.
package report
