package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/loadgen"
)

// isDirectoryBench reports whether bench was asked for --mode directory,
// which has its own flags.
func isDirectoryBench(args []string) bool {
	for i, a := range args {
		if a == "--mode=directory" || a == "-mode=directory" ||
			((a == "--mode" || a == "-mode") && i+1 < len(args) && args[i+1] == "directory") {
			return true
		}
	}
	return false
}

func runDirectoryBench(ctx context.Context, args []string) error {
	fs := newFlagSet("bench --mode directory", "[flags]", `
Measures a bootstrap's directory API under load: requests at a constant
rate, open loop (each is due at its time whether or not earlier ones have
answered, and its latency counts from then), for listing what is live
(GET /api/v1/broadcasts) and for announcing (PUT /api/v1/broadcasts/{id},
signed by the broadcaster's key: a viewer-count update of one of
--broadcasts live broadcasts).

Without --url it starts a bootstrap's HTTP service in this process (a
fresh database in a temporary directory, rate limits off); with --url it
loads that bootstrap, which must run with --no-rate-limits.

Example:

  peerscope bench --mode directory --rate 1000 --duration 30s --json`)
	fs.String("mode", "directory", "directory (the tree's modes are in 'peerscope bench --help')")
	url := fs.String("url", "", "the bootstrap to load (default: one in this process)")
	rate := fs.Float64("rate", 1000, "requests per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to send, per operation")
	ops := fs.String("op", "list,announce", `operations, one after another: "list", "announce"`)
	broadcasts := fs.Int("broadcasts", 200, "live broadcasts in the directory (and announcers)")
	workers := fs.Int("workers", 512, "most requests in flight")
	jsonOut := fs.Bool("json", false, "print one JSON line per operation")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (generator and in-process server) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench", "unexpected argument %q", fs.Arg(0))
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	opList := splitList(*ops)
	for _, op := range opList {
		if op != "list" && op != "announce" {
			return usagef("bench", "--op: unknown operation %q", op)
		}
	}
	if *rate <= 0 || *duration <= 0 || *broadcasts <= 0 || *workers <= 0 {
		return usagef("bench", "--rate, --duration, --broadcasts and --workers must be positive")
	}
	base := *url
	if base == "" {
		dir, err := os.MkdirTemp("", "peerscope-bench-bootstrap-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		off := bootstrap.Rate{PerSecond: -1}
		svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: dir, HTTP: "127.0.0.1:0",
			Server: bootstrap.ServerConfig{RateIP: off, RatePeer: off, RateAccount: off, RatePhone: off}})
		if err != nil {
			return err
		}
		sctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Serve(sctx) }()
		defer func() { stop(); <-done }()
		base = svc.URL()
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers, IdleConnTimeout: time.Minute},
		Timeout: 30 * time.Second}

	// The broadcasters: deterministic keys, each announces once first.
	type announcer struct {
		c       *api.Client
		id      string
		started time.Time
		version atomic.Uint64
	}
	anns := make([]*announcer, *broadcasts)
	now := time.Now()
	for i := range anns {
		seed := make([]byte, ed25519.SeedSize)
		binary.BigEndian.PutUint64(seed, uint64(i)+1)
		priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			return err
		}
		pid, _ := peer.IDFromPrivateKey(priv)
		a := &announcer{c: &api.Client{Base: base, Key: priv, HTTP: hc}, id: pid.String() + ".bench", started: now.Add(-time.Minute)}
		a.version.Store(1)
		if _, err := a.c.Announce(ctx, a.id, benchAnnouncement(a.id, i, a.started, 1, 0)); err != nil {
			return fmt.Errorf("bench: filling the directory: %w", err)
		}
		anns[i] = a
	}
	var stale atomic.Int64
	for _, op := range opList {
		var do func(ctx context.Context, i int) error
		switch op {
		case "list":
			do = func(ctx context.Context, i int) error {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/broadcasts", nil)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte(`{"broadcasts":[{`)) {
					return fmt.Errorf("list: %s", resp.Status)
				}
				return nil
			}
		case "announce":
			stale.Store(0)
			do = func(ctx context.Context, i int) error {
				a := anns[i%len(anns)]
				v := a.version.Add(1)
				_, err := a.c.Announce(ctx, a.id, benchAnnouncement(a.id, i%len(anns), a.started, v, i%1000))
				var ae *api.APIError
				if errors.As(err, &ae) && ae.Status == http.StatusConflict {
					stale.Add(1) // overtaken by this broadcaster's next version: answered all the same
					return nil
				}
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "bench: %s at %.0f/s for %s against %s (%d live broadcasts)\n", op, *rate, *duration, base, len(anns))
		r, err := loadgen.Run(ctx, loadgen.Config{Rate: *rate, Duration: *duration, Workers: *workers, Do: do})
		if err != nil {
			return err
		}
		report := map[string]any{"mode": "directory", "op": op, "rate": *rate, "duration_s": duration.Seconds(),
			"broadcasts": len(anns), "sent": r.Sent, "errors": r.Errors, "achieved_rps": round2(r.Achieved),
			"latency_ms": map[string]float64{"p50": round2(r.P50), "p90": round2(r.P90), "p99": round2(r.P99), "p999": round2(r.P999), "max": round2(r.Max)},
			"stale":      stale.Load(), "in_process": *url == "", "gomaxprocs": runtime.GOMAXPROCS(0)}
		if r.FirstError != "" {
			report["first_error"] = r.FirstError
		}
		if *jsonOut {
			b, _ := json.Marshal(report)
			fmt.Println(string(b))
			continue
		}
		fmt.Printf("%-9s sent %d at %.0f/s, %d errors, achieved %.0f/s; latency p50 %.2f ms, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f\n",
			op, r.Sent, *rate, r.Errors, r.Achieved, r.P50, r.P90, r.P99, r.P999, r.Max)
		if r.FirstError != "" {
			fmt.Printf("          first error: %s\n", r.FirstError)
		}
	}
	return nil
}

func benchAnnouncement(id string, i int, started time.Time, version uint64, viewers int) api.ListingUpdate {
	words := []string{"sunrise", "cooking", "music", "football", "coding", "harbour", "city", "garden"}
	title := strings.Join([]string{words[i%len(words)], words[(i/len(words))%len(words)], "live"}, " ")
	return api.ListingUpdate{Title: title, Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + strings.Split(id, ".")[0],
		Started: started, Version: version, Viewers: viewers}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
