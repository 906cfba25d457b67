//go:build !light

package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/peerscope/peerscope/internal/report"
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

// createHeapProfile creates the file a heap profile will go to (nil when
// path is empty), before the run, so that a bad path fails at once rather
// than after the whole simulation.
func createHeapProfile(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	return os.Create(path)
}

// writeHeapProfile writes a heap profile to f (nothing when f is nil) and
// closes it, after a collection so that its live figures are current.
func writeHeapProfile(f *os.File) error {
	if f == nil {
		return nil
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

// reportTable writes a report as the table bench and sim print for people:
// a row a figure, the rows they both have written once here.
type reportTable struct {
	tw     *tabwriter.Writer
	r      *report.Report
	digits int // decimals of a quantile in ms
}

func newReportTable(w io.Writer, r *report.Report, digits int) *reportTable {
	return &reportTable{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), r: r, digits: digits}
}

func (t *reportTable) row(k, format string, a ...any) {
	fmt.Fprintf(t.tw, "%s\t"+format+"\n", append([]any{k}, a...)...)
}

// x is one of the report's extra figures.
func (t *reportTable) x(k string) float64 { return t.r.Extra[k] }

// q writes quantiles in ms.
func (t *reportTable) q(v report.Quantiles) string {
	d := t.digits
	return fmt.Sprintf("p50 %.*f  p95 %.*f  p99 %.*f  max %.*f", d, v.P50, d, v.P95, d, v.P99, d, v.Max)
}

// delivery writes what reached the viewers: continuity and delivered.
func (t *reportTable) delivery() {
	r := t.r
	t.row("continuity", "%.4f   (%.0f chunks due, %.0f late, %.0f never arrived)", r.Continuity, t.x("chunks_due"), t.x("chunks_late"), t.x("chunks_missed"))
	t.row("delivered", "%.4f", r.DeliveredRatio)
}

// adversaries writes what the honest viewers went through, when the run
// had sybils, padders or a mass kill (their keys are in Extra only then):
// the longest stalls, the time under a withholder, the pad relayed.
func (t *reportTable) adversaries() {
	r := t.r
	if _, ok := r.Extra["stall_max_ms"]; ok {
		t.row("longest stall", "max %.0f ms, p99 %.0f ms over the honest viewers   (%.0f stalled at all)", t.x("stall_max_ms"), t.x("stall_p99_ms"), t.x("stalled_viewers"))
	}
	if _, ok := r.Extra["sybils"]; !ok {
		return
	}
	t.row("adversaries", "%.0f sybils, %.0f padders, %.0f killed at once", t.x("sybils"), t.x("padders"), t.x("killed"))
	if q := r.WithheldRejoinMs; q != nil {
		t.row("withheld rejoin ms", "%s   (%.0f measured)", t.q(*q), t.x("withheld_rejoins"))
	}
	if t.x("padders") > 0 {
		t.row("pad bytes", "%.0f sent by padders, %.0f relayed by honest nodes", t.x("pad_bytes_sent"), t.x("pad_bytes_relayed"))
	}
}

// soak writes the process's RSS and goroutines at the start, the middle
// and the end of a run that sampled them (bench --sample).
func (t *reportTable) soak() {
	if _, ok := t.r.Extra["rss_start_mb"]; !ok {
		return
	}
	t.row("RSS MiB", "%.0f at %.0f s, %.0f at %.0f s, %.0f at %.0f s   (most %.0f)", t.x("rss_start_mb"), t.x("soak_start_s"),
		t.x("rss_mid_mb"), t.x("soak_mid_s"), t.x("rss_end_mb"), t.x("soak_end_s"), t.x("rss_max_mb"))
	t.row("goroutines", "%.0f, %.0f, %.0f   (most %.0f)", t.x("goroutines_start"), t.x("goroutines_mid"), t.x("goroutines_end"), t.x("goroutines_max"))
	t.row("stayed", "%.0f viewers stayed the whole run and missed %.0f chunks", t.x("stayed_viewers"), t.x("stayed_missed"))
}

// costs writes how long rejoining took and what the tree cost in bytes:
// the uploads, duplicates and control overhead.
func (t *reportTable) costs() {
	r := t.r
	if r.RejoinMs != nil {
		t.row("rejoin ms", "%s   (%.0f measured)", t.q(*r.RejoinMs), t.x("rejoins_measured"))
	} else {
		t.row("rejoin ms", "-")
	}
	t.row("source upload", "%.2f x stream", r.SourceUploadRatio)
	t.row("max viewer upload", "%.2f x stream", r.MaxUploadRatio)
	t.row("duplicates", "%.4f of chunk bytes", r.DuplicateRatio)
	t.row("overhead", "%.4f control bytes per chunk byte", r.OverheadRatio)
}

// flush writes the table, then the extra figures under it.
func (t *reportTable) flush(w io.Writer) {
	t.tw.Flush()
	printExtra(w, t.r.Extra)
}
