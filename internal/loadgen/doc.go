// Package loadgen sends requests at a constant rate, open loop: request i
// is due at start + i/rate whether or not earlier ones have answered, so a
// slow server cannot slow the generator down and hide its own latency
// (closed-loop tools like wrk do; "coordinated omission"). Each request's
// latency is measured from when it was due, which also counts the time it
// waited for a free worker.
//
// How data flows through Run:
//
//	Config{Rate, Duration, Workers, Do} ─► a schedule: request i due at start + i/Rate
//	  ─► a free worker (waiting for one counts) ─► Do(ctx, i) ─► its latency from when it was due
//	  ─► Result: sent, errors, achieved rate, p50 … p99.9, max, the first error
//
// 'peerscope bench --mode directory' is its user.
package loadgen
