//go:build !light

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh/sim"
)

// maxSeeds bounds a --seeds list: each seed is a whole run.
const maxSeeds = 1000

// parseSeeds reads a --seeds list: seeds and ranges separated by commas,
// "1-20" or "1,3,5-7". Seeds come back in the order given, each once.
func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	seen := make(map[uint64]bool)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds %q: %q is not a seed or a range", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("--seeds %q: %q is not a range (low-high)", s, part)
			}
		}
		if b-a >= maxSeeds || len(out)+int(b-a+1) > maxSeeds {
			return nil, fmt.Errorf("--seeds %q: more than %d seeds", s, maxSeeds)
		}
		for v := a; ; v++ {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
			if v == b {
				break
			}
		}
	}
	return out, nil
}

// simSeeds is 'sim --seeds': cfg run once per seed of the list, parallel at
// once. oneRun says a flag for a single run was given (--trace, --progress,
// --memprofile), which a list refuses.
func simSeeds(ctx context.Context, cfg sim.Config, seeds string, parallel int, jsonOut, oneRun bool) error {
	list, err := parseSeeds(seeds)
	switch {
	case err != nil:
		return usagef("sim", "%v", err)
	case oneRun:
		return usagef("sim", "--trace, --progress and --memprofile are for one run, not --seeds")
	case parallel < 1:
		return usagef("sim", "--parallel must be at least 1")
	}
	if err := runSeeds(ctx, os.Stdout, cfg, list, parallel, jsonOut); err != nil {
		return simErr(err)
	}
	return nil
}

// seedRun is one seed's run of a --seeds list.
type seedRun struct {
	r   *report.Report
	err error
}

// runSeeds runs cfg once per seed, parallel at a time, and writes a line per
// seed (in the order given, each as soon as those before it are done) and
// a summary; with jsonOut, each report as a line of JSON after its line.
// One seed's figures are one draw of a chaotic system (a change to the
// tree reshuffles which relay fails where), so a rule is judged on many.
func runSeeds(ctx context.Context, w io.Writer, cfg sim.Config, seeds []uint64, parallel int, jsonOut bool) error {
	runs := make([]seedRun, len(seeds))
	done := make([]chan struct{}, len(seeds))
	for i := range done {
		done[i] = make(chan struct{})
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(parallel, len(seeds))) {
		wg.Go(func() {
			for i := range next {
				c := cfg
				c.Seed = seeds[i]
				runs[i].r, runs[i].err = sim.Run(ctx, c)
				close(done[i])
			}
		})
	}
	go func() {
		defer close(next)
		for i := range seeds {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()

	var sum seedSummary
	kill := cfg.KillFraction > 0
	for i := range seeds {
		select {
		case <-done[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := runs[i].err; err != nil {
			return fmt.Errorf("seed %d: %w", seeds[i], err)
		}
		r := runs[i].r
		fmt.Fprintln(w, seedLine(r, kill))
		if jsonOut {
			fmt.Fprintln(w, r.JSON())
		}
		sum.add(r, kill)
	}
	sum.write(w, kill)
	return nil
}

// longStallMs is the stall a seed is judged by: issue 11's bound, no
// honest viewer stalled longer than 2 s.
const longStallMs = 2000

// seedStall is what a seed is judged by: the longest stall and, in a kill
// run, the viewers stalled longer than longStallMs, both counted from the
// kill on (before it, the arrival burst is another question). Without a
// kill the report has no such count: over is 0.
func seedStall(r *report.Report, kill bool) (longest, over float64) {
	if kill {
		return r.Extra["stall_after_kill_max_ms"], r.Extra["stalled_over_2s_after_kill"]
	}
	return r.Extra["stall_max_ms"], 0
}

// seedLine is one seed's figures on a line.
func seedLine(r *report.Report, kill bool) string {
	longest, over := seedStall(r, kill)
	stall := fmt.Sprintf("longest stall %.1f s", longest/1000)
	node, at := r.Extra["stall_worst_node"], r.Extra["stall_worst_at_s"]
	if kill {
		stall = fmt.Sprintf("after the kill: longest stall %.1f s, %.0f viewers over 2 s", longest/1000, over)
		node, at = r.Extra["stall_after_kill_node"], r.Extra["stall_after_kill_at_s"]
	}
	if longest > 0 && node > 0 {
		// Where to point --trace.
		stall += fmt.Sprintf(" (n%.0f from %.1f s)", node, at)
	}
	if k := r.Extra["killed_top"]; kill && k > 0 {
		// What the draws that cascade have in common (BENCHMARKS.md,
		// "Session 20").
		stall += fmt.Sprintf(", the kill took %.0f of the broadcaster's children (%.0f viewers below)", k, r.Extra["killed_top_below"])
	}
	return fmt.Sprintf("seed %d: continuity %.4f, latency p99 %.0f ms, %s, max depth %d, %.0f left a parent as slow (%.1f s wall)",
		r.Seed, r.Continuity, r.LatencyMs.P99, stall, r.MaxDepth, r.Extra["lost_slow"], r.WallS)
}

// seedSummary gathers the seeds' figures.
type seedSummary struct {
	n, within         int
	minCont, sumCont  float64
	worstP99, worstMs float64
	worstSeed         uint64
	over              float64
	wall              float64
	// byTop splits a kill run's seeds by how many of the broadcaster's
	// children the kill took (none, one, two or more): the draws that take
	// one are where the viewers over 2 s are (BENCHMARKS.md, "Session
	// 20"), and a rule is judged on each kind apart.
	byTop [3]struct {
		n, within int
		over      float64
	}
}

func (s *seedSummary) add(r *report.Report, kill bool) {
	longest, over := seedStall(r, kill)
	if s.n == 0 || r.Continuity < s.minCont {
		s.minCont = r.Continuity
	}
	s.n++
	s.sumCont += r.Continuity
	s.worstP99 = max(s.worstP99, r.LatencyMs.P99)
	if longest <= longStallMs {
		s.within++
	}
	if longest > s.worstMs || s.n == 1 {
		s.worstMs, s.worstSeed = longest, r.Seed
	}
	s.over += over
	s.wall += r.WallS
	if kill {
		b := &s.byTop[min(int(r.Extra["killed_top"]), len(s.byTop)-1)]
		b.n++
		b.over += over
		if longest <= longStallMs {
			b.within++
		}
	}
}

func (s *seedSummary) write(w io.Writer, kill bool) {
	if s.n == 0 {
		return
	}
	what := "no honest viewer stalled over 2 s"
	if kill {
		what += " after the kill"
	}
	fmt.Fprintf(w, "%d seeds: %s in %d of %d; longest stall %.1f s (seed %d)", s.n, what, s.within, s.n, s.worstMs/1000, s.worstSeed)
	if kill {
		fmt.Fprintf(w, ", viewers over 2 s %.0f in all", s.over)
	}
	fmt.Fprintf(w, "; continuity min %.4f, mean %.4f; latency p99 at worst %.0f ms; the runs took %v of wall time in all",
		s.minCont, s.sumCont/float64(s.n), s.worstP99, time.Duration(s.wall*float64(time.Second)).Round(100*time.Millisecond))
	if kill {
		parts := make([]string, len(s.byTop))
		for i, name := range []string{"none", "one", "two or more"} {
			b := s.byTop[i]
			unit := "seeds"
			if b.n == 1 {
				unit = "seed"
			}
			parts[i] = fmt.Sprintf("%s, %d %s (%d within 2 s, %.0f viewers over)", name, b.n, unit, b.within, b.over)
		}
		fmt.Fprint(w, "; by the broadcaster's children the kill took: "+strings.Join(parts, "; "))
	}
	fmt.Fprintln(w)
}
