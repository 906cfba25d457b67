package bench

import (
	"io"
	"math"
	"runtime/metrics"
	"sync"
	"time"
)

// schedSnapshot holds the Go runtime's histograms of how long runnable
// goroutines waited for a CPU and of stop-the-world pauses, so that a run can
// tell its own latency from the machine's (a loaded machine shows up here
// first).
type schedSnapshot struct {
	latency, pauses *metrics.Float64Histogram
}

var schedMetrics = []string{"/sched/latencies:seconds", "/sched/pauses/total/gc:seconds"}

func takeSched() schedSnapshot {
	s := make([]metrics.Sample, len(schedMetrics))
	for i, name := range schedMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var snap schedSnapshot
	if s[0].Value.Kind() == metrics.KindFloat64Histogram {
		snap.latency = s[0].Value.Float64Histogram()
	}
	if s[1].Value.Kind() == metrics.KindFloat64Histogram {
		snap.pauses = s[1].Value.Float64Histogram()
	}
	return snap
}

// quantileSince returns the q-quantile (in ms) of what the histogram
// counted between two snapshots, and the largest bucket seen.
func quantileSince(before, after *metrics.Float64Histogram, q float64) (quant, most float64) {
	if before == nil || after == nil || len(before.Counts) != len(after.Counts) {
		return 0, 0
	}
	var total uint64
	diff := make([]uint64, len(after.Counts))
	for i := range after.Counts {
		diff[i] = after.Counts[i] - before.Counts[i]
		total += diff[i]
	}
	if total == 0 {
		return 0, 0
	}
	upper := func(i int) float64 {
		b := after.Buckets[i+1]
		if math.IsInf(b, 1) {
			b = after.Buckets[i]
		}
		return round4(b * 1000)
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	quant = -1
	for i, c := range diff {
		seen += c
		if quant < 0 && seen >= want {
			quant = upper(i)
		}
		if c > 0 {
			most = upper(i)
		}
	}
	return quant, most
}

// closeHostsWithin bounds how long the end of a run waits for its hosts to
// close. go-libp2p v0.51's host Close can wait forever: an identify push
// that arrives while a host closes blocks on a full event-bus subscription
// while holding the lock AutoNAT's Close needs (seen once in a 100-host
// run with sybils, the report never printed). The report is made by then;
// a host still closing is left to the process's exit.
const closeHostsWithin = 20 * time.Second

// closeAll closes the hosts at once and waits for them, at most
// closeHostsWithin.
func (r *run) closeAll(hosts []io.Closer) {
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() { _ = h.Close() })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeHostsWithin):
		r.progress("%s: hosts still closing after %s, left to the exit", r.cfg.Mode, closeHostsWithin)
	}
}
