//go:build !light

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh/sim"
)

func TestParseSeeds(t *testing.T) {
	for in, want := range map[string][]uint64{
		"7":          {7},
		"1-3":        {1, 2, 3},
		"3, 1-2,2,9": {3, 1, 2, 9},
		"0-0":        {0},
		"5,5-6":      {5, 6},
	} {
		got, err := parseSeeds(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseSeeds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "1,,2", "5-2", "-3", "1-", "1-5000", "0-18446744073709551615"} {
		if got, err := parseSeeds(in); err == nil {
			t.Errorf("parseSeeds(%q) = %v, want an error", in, got)
		}
	}
}

// TestSeedsAsAlone runs two seeds at once and checks that each report is
// the one its seed gives alone (runs share nothing), in the order asked,
// with the summary judging them by their stalls after the kill.
func TestSeedsAsAlone(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Nodes, cfg.Duration = 200, 16*time.Second
	cfg.ArrivalWindow, cfg.KillAt, cfg.KillFraction = 5*time.Second, 10*time.Second, 0.3
	seeds := []uint64{2, 1}
	var out bytes.Buffer
	if err := runSeeds(context.Background(), &out, cfg, seeds, 2, true); err != nil {
		t.Fatal(err)
	}
	var got []*report.Report
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, "{") {
			r := new(report.Report)
			if err := json.Unmarshal([]byte(l), r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		} else {
			lines = append(lines, l)
		}
	}
	if len(got) != 2 || len(lines) != 3 {
		t.Fatalf("want two reports and three lines, got:\n%s", out.String())
	}
	over := 0.0
	for i, seed := range seeds {
		c := cfg
		c.Seed = seed
		alone, err := sim.Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		a, b := *alone, *got[i]
		a.WallS, a.RSSBytes, b.WallS, b.RSSBytes = 0, 0, 0, 0
		if a.JSON() != b.JSON() {
			t.Errorf("seed %d run beside another differs from its run alone:\n%s\n%s", seed, b.JSON(), a.JSON())
		}
		if !strings.HasPrefix(lines[i], fmt.Sprintf("seed %d: ", seed)) {
			t.Errorf("line %d is %q, want seed %d's", i, lines[i], seed)
		}
		over += alone.Extra["stalled_over_2s_after_kill"]
		if _, ok := alone.Extra["stall_after_kill_max_ms"]; !ok {
			t.Fatalf("seed %d: no stall after the kill in the report", seed)
		}
	}
	if want := fmt.Sprintf(" viewers over 2 s %.0f in all", over); !strings.Contains(lines[2], want) || !strings.HasPrefix(lines[2], "2 seeds: ") {
		t.Errorf("summary %q does not say %q", lines[2], want)
	}
}

// TestSeedsByTop: a kill run's summary splits the seeds by how many of
// the broadcaster's children the kill took, with the seeds within 2 s and
// the viewers over 2 s of each kind.
func TestSeedsByTop(t *testing.T) {
	var s seedSummary
	for _, x := range []struct{ top, longest, over float64 }{
		{0, 1800, 0}, {0, 2400, 3}, {1, 7000, 669}, {2, 5000, 200}, {3, 4000, 50},
	} {
		s.add(&report.Report{Continuity: 0.999, Extra: map[string]float64{
			"killed_top": x.top, "stall_after_kill_max_ms": x.longest, "stalled_over_2s_after_kill": x.over,
		}}, true)
	}
	var out bytes.Buffer
	s.write(&out, true)
	want := "by the broadcaster's children the kill took: none, 2 seeds (1 within 2 s, 3 viewers over);" +
		" one, 1 seed (0 within 2 s, 669 viewers over); two or more, 2 seeds (0 within 2 s, 250 viewers over)\n"
	if !strings.HasSuffix(out.String(), want) || !strings.HasPrefix(out.String(), "5 seeds: ") || !strings.Contains(out.String(), " viewers over 2 s 922 in all") {
		t.Errorf("summary:\n%s\nwant it to end:\n%s", out.String(), want)
	}
	out.Reset()
	s = seedSummary{}
	s.add(&report.Report{Continuity: 1, Extra: map[string]float64{"stall_max_ms": 400}}, false)
	s.write(&out, false)
	if strings.Contains(out.String(), "broadcaster's children") {
		t.Errorf("a run without a kill splits its seeds by the kill: %s", out.String())
	}
}

// TestSimCommand runs 'peerscope sim' as a user would, with and without
// stripes. (The --parity flag's default once made every run without
// --stripes a usage error: "Stripes 0, Parity 1".)
func TestSimCommand(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--nodes", "30", "--duration", "5s", "--arrive", "2s"},
		{"sim", "--nodes", "30", "--duration", "5s", "--arrive", "2s", "--stripes", "2"},
		{"sim", "--nodes", "30", "--duration", "5s", "--arrive", "2s", "--stripes", "2", "--parity", "2"},
	} {
		out, err := capture(t, func() error { return run(t.Context(), args) })
		if err != nil || !strings.Contains(out, "continuity") {
			t.Errorf("peerscope %v: %v\n%s", args, err, out)
		}
	}
	_, err := capture(t, func() error {
		return run(t.Context(), []string{"sim", "--nodes", "30", "--duration", "5s", "--stripes", "2", "--parity", "3"})
	})
	if exitCode(err) != 2 {
		t.Errorf("--stripes 2 --parity 3: exit code %d (%v), want a usage error", exitCode(err), err)
	}
}
