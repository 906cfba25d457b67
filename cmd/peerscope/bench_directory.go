//go:build !light

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
	"slices"
	"strconv"
	"strings"
	"sync"
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

// directoryBench is a run of 'bench --mode directory' as its flags set it.
type directoryBench struct {
	url        string    // the bootstrap to load; empty: one in this process
	db         string    // the in-process bootstrap's database; empty: SQLite in a temporary directory
	rates      []float64 // --rate: one rate, or a sweep
	replicas   []int     // --replicas: counts of in-process bootstraps on one PostgreSQL, a sweep
	duration   time.Duration
	ops        []string // "list", "announce", one after another
	broadcasts int
	workers    int
	json       bool
	cpuprofile string
}

// runDirectoryBench loads a bootstrap's directory API: it fills the
// directory with --broadcasts live broadcasts, then sends each operation at
// a constant rate for --duration and reports its latencies.
func runDirectoryBench(ctx context.Context, args []string) error {
	b, err := parseDirectoryBench(args)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(b.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	bases := []string{b.url}
	var codes *benchCodes
	if b.url == "" {
		codes = &benchCodes{codes: map[string]string{}}
		url, stop, err := startBenchBootstrap(ctx, b.db, codes)
		if err != nil {
			return err
		}
		defer stop()
		bases[0] = url
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.workers, MaxConnsPerHost: b.workers, IdleConnTimeout: time.Minute},
		Timeout: 30 * time.Second}
	anns, err := fillDirectory(ctx, bases[0], hc, b.broadcasts, codes)
	if err != nil {
		return err
	}
	var held []string
	for _, k := range b.replicas {
		// The sweep adds replicas to the ones running: the later ones
		// find the directory filled, as a replica started on a running
		// community's database does.
		for len(bases) < k {
			url, stop, err := startBenchBootstrap(ctx, b.db, codes)
			if err != nil {
				return err
			}
			defer stop()
			bases = append(bases, url)
		}
		var stale atomic.Int64
		for _, op := range b.ops {
			best := 0.0
			for _, rate := range b.rates {
				var do func(ctx context.Context, i int) error
				switch op {
				case "list":
					do = listOp(bases[:k], hc)
				case "announce":
					stale.Store(0)
					do = announceOp(anns, bases[:k], &stale)
				}
				fmt.Fprintf(os.Stderr, "bench: %s at %.0f/s for %s against %s (%d live broadcasts)\n", op, rate, b.duration, strings.Join(bases[:k], " "), len(anns))
				r, err := loadgen.Run(ctx, loadgen.Config{Rate: rate, Duration: b.duration, Workers: b.workers, Do: do})
				if err != nil {
					return err
				}
				b.report(op, rate, k, r, len(anns), stale.Load())
				if r.Errors == 0 && r.Achieved >= 0.99*rate && r.P99 <= heldP99[op] {
					best = max(best, rate)
				}
			}
			if len(b.rates) > 1 || len(b.replicas) > 1 {
				held = append(held, fmt.Sprintf("%d replica(s), %s: held %.0f/s at p99 ≤ %.0f ms", k, op, best, heldP99[op]))
			}
		}
	}
	for _, h := range held {
		fmt.Fprintln(os.Stderr, "bench: "+h)
	}
	return nil
}

// heldP99 is the latency an operation's rate is held at in a sweep (the
// bounds issue 16 asks of the directory): a rate is held when every
// request was answered, the rate was achieved and its p99 is within this.
var heldP99 = map[string]float64{"list": 10, "announce": 50}

// parseDirectoryBench reads the flags of 'bench --mode directory' and
// refuses values it cannot run with.
func parseDirectoryBench(args []string) (*directoryBench, error) {
	fs := newFlagSet("bench --mode directory", "[flags]", `
Measures a bootstrap's directory API under load: requests at a constant
rate, open loop (each is due at its time whether or not earlier ones have
answered, and its latency counts from then), for listing what is live
(GET /api/v1/broadcasts) and for announcing (PUT /api/v1/broadcasts/{id},
signed by the broadcaster's key: a viewer-count update of one of
--broadcasts live broadcasts).

Without --url it starts a bootstrap's HTTP service in this process (a
fresh database in a temporary directory, rate limits off, the caps on live
listings on) and signs each broadcaster up with a phone number first, as
the bootstrap's caps want of a broadcaster with more than a few listings
per network; --db puts that bootstrap's store on a PostgreSQL database
(postgres://…, an empty one: the bench signs the same numbers up every
run). With --url it loads that bootstrap, which must run with
--no-rate-limits (which lifts the caps: its broadcasters are anonymous).

--rate takes a list too (250,500,1000): each operation is run at each
rate in turn, and the highest rate held (no error, the rate achieved, p99
within 10 ms for listing and 50 ms for announcing) is said at the end.
--replicas 1,2,3 (with --db) runs the whole sweep against one, then two,
then three bootstraps in this process on that one database, requests
spread over them in turn: the replicas' scaling, measured in one run.

Example:

  peerscope bench --mode directory --rate 1000 --duration 30s --json`)
	fs.String("mode", "directory", "directory (the tree's modes are in 'peerscope bench --help')")
	url := fs.String("url", "", "the bootstrap to load (default: one in this process)")
	db := fs.String("db", "", "the in-process bootstrap's database: an empty PostgreSQL database's URL (default: SQLite in a temporary directory)")
	rate := fs.String("rate", "1000", "requests per second, or a list of rates to sweep (250,500,1000)")
	replicas := fs.String("replicas", "1", "with --db: bootstraps on that database, or a list of counts to sweep (1,2,3)")
	duration := fs.Duration("duration", 30*time.Second, "how long to send, per operation")
	ops := fs.String("op", "list,announce", `operations, one after another: "list", "announce"`)
	broadcasts := fs.Int("broadcasts", 200, "live broadcasts in the directory (and announcers)")
	workers := fs.Int("workers", 512, "most requests in flight")
	jsonOut := fs.Bool("json", false, "print one JSON line per operation")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (generator and in-process server) to this file")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usagef("bench", "unexpected argument %q", fs.Arg(0))
	}
	if *db != "" && *url != "" {
		return nil, usagef("bench", "--db is the in-process bootstrap's: not with --url")
	}
	b := &directoryBench{url: *url, db: *db, duration: *duration, ops: splitList(*ops),
		broadcasts: *broadcasts, workers: *workers, json: *jsonOut, cpuprofile: *cpuprofile}
	for _, r := range splitList(*rate) {
		f, err := strconv.ParseFloat(r, 64)
		if err != nil || f <= 0 {
			return nil, usagef("bench", "--rate: %q is not a positive number of requests per second", r)
		}
		b.rates = append(b.rates, f)
	}
	for _, r := range splitList(*replicas) {
		k, err := strconv.Atoi(r)
		if err != nil || k <= 0 || k > 16 {
			return nil, usagef("bench", "--replicas: %q is not a count of bootstraps from 1 to 16", r)
		}
		b.replicas = append(b.replicas, k)
	}
	if len(b.rates) == 0 || len(b.replicas) == 0 {
		return nil, usagef("bench", "--rate and --replicas need at least one value")
	}
	if slices.Max(b.replicas) > 1 && b.db == "" {
		return nil, usagef("bench", "--replicas: several bootstraps share a PostgreSQL database: give it with --db (SQLite is one process's file)")
	}
	for _, op := range b.ops {
		if op != "list" && op != "announce" {
			return nil, usagef("bench", "--op: unknown operation %q", op)
		}
	}
	if b.duration <= 0 || b.broadcasts <= 0 || b.workers <= 0 {
		return nil, usagef("bench", "--duration, --broadcasts and --workers must be positive")
	}
	return b, nil
}

// benchCodes is the in-process bootstrap's SMS network: the codes it sent.
type benchCodes struct {
	mu    sync.Mutex
	codes map[string]string
}

func (c *benchCodes) SendCode(_ context.Context, phone, code string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes[phone] = code
	return nil
}

func (c *benchCodes) code(phone string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.codes[phone]
}

// startBenchBootstrap starts a bootstrap's HTTP service in this process,
// on db (empty: a fresh SQLite database in a temporary directory), its rate limits off (the
// caps on live listings on), its phone codes sent to codes, and returns
// its URL; stop shuts it down and removes the directory.
func startBenchBootstrap(ctx context.Context, db string, codes bootstrap.CodeSender) (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "peerscope-bench-bootstrap-")
	if err != nil {
		return "", nil, err
	}
	off := bootstrap.Rate{PerSecond: -1}
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: dir, DB: db, HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{RateIP: off, RatePeer: off, RateAccount: off, RatePhone: off, Phone: codes}})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(sctx) }()
	return svc.URL(), func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}, nil
}

// benchAnnouncer is one of the bench's broadcasters: a deterministic key
// and the version of its latest announcement.
type benchAnnouncer struct {
	c       *api.Client
	id      string
	started time.Time
	version atomic.Uint64
}

// fillDirectory puts n live broadcasts into the directory at base, each
// announced once by its broadcaster (signed up with a phone number first
// when codes reads the bootstrap's codes), and returns the broadcasters.
func fillDirectory(ctx context.Context, base string, hc *http.Client, n int, codes *benchCodes) ([]*benchAnnouncer, error) {
	anns := make([]*benchAnnouncer, n)
	now := time.Now()
	for i := range anns {
		seed := make([]byte, ed25519.SeedSize)
		binary.BigEndian.PutUint64(seed, uint64(i)+1)
		priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			return nil, err
		}
		pid, _ := peer.IDFromPrivateKey(priv)
		a := &benchAnnouncer{c: &api.Client{Base: base, Key: priv, HTTP: hc}, id: pid.String() + ".bench", started: now.Add(-time.Minute)}
		a.version.Store(1)
		if codes != nil {
			phone := fmt.Sprintf("+1555%07d", i)
			if err := a.c.PhoneStart(ctx, phone); err != nil {
				return nil, fmt.Errorf("bench: signing up: %w", err)
			}
			if _, err := a.c.PhoneVerify(ctx, phone, codes.code(phone)); err != nil {
				return nil, fmt.Errorf("bench: signing up: %w", err)
			}
		}
		if _, err := a.c.Announce(ctx, a.id, benchAnnouncement(a.id, i, a.started, 1, 0)); err != nil {
			return nil, fmt.Errorf("bench: filling the directory: %w", err)
		}
		anns[i] = a
	}
	return anns, nil
}

// listOp is the "list" operation: one GET of what is live, which must
// answer 200 with at least one broadcast; request i goes to bases[i mod
// their number].
func listOp(bases []string, hc *http.Client) func(ctx context.Context, i int) error {
	return func(ctx context.Context, i int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, bases[i%len(bases)]+"/api/v1/broadcasts", nil)
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
}

// announceOp is the "announce" operation: request i is the next version of
// broadcaster i's announcement, a new viewer count. A 409 (overtaken by
// that broadcaster's next version) counts in stale, not as an error. With
// several bases a broadcaster's versions go to each in turn, so that
// consecutive versions of one broadcast meet on different replicas.
func announceOp(anns []*benchAnnouncer, bases []string, stale *atomic.Int64) func(ctx context.Context, i int) error {
	clients := make([][]*api.Client, len(anns))
	for j, a := range anns {
		for _, base := range bases {
			clients[j] = append(clients[j], &api.Client{Base: base, Key: a.c.Key, HTTP: a.c.HTTP})
		}
	}
	return func(ctx context.Context, i int) error {
		j := i % len(anns)
		a := anns[j]
		v := a.version.Add(1)
		c := clients[j][(i/len(anns))%len(bases)]
		_, err := c.Announce(ctx, a.id, benchAnnouncement(a.id, j, a.started, v, i%1000))
		var ae *api.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			stale.Add(1) // overtaken by this broadcaster's next version: answered all the same
			return nil
		}
		return err
	}
}

// report prints one operation's result: a JSON line with --json, else a
// line for people.
func (b *directoryBench) report(op string, rate float64, replicas int, r loadgen.Result, broadcasts int, stale int64) {
	if b.json {
		line := map[string]any{"mode": "directory", "op": op, "rate": rate, "replicas": replicas, "duration_s": b.duration.Seconds(),
			"broadcasts": broadcasts, "sent": r.Sent, "errors": r.Errors, "achieved_rps": round2(r.Achieved),
			"latency_ms": map[string]float64{"p50": round2(r.P50), "p90": round2(r.P90), "p99": round2(r.P99), "p999": round2(r.P999), "max": round2(r.Max)},
			"stale":      stale, "in_process": b.url == "", "store": b.store(), "gomaxprocs": runtime.GOMAXPROCS(0)}
		if r.FirstError != "" {
			line["first_error"] = r.FirstError
		}
		out, _ := json.Marshal(line)
		fmt.Println(string(out))
		return
	}
	fmt.Printf("%-9s %d replica(s): sent %d at %.0f/s, %d errors, achieved %.0f/s; latency p50 %.2f ms, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f\n",
		op, replicas, r.Sent, rate, r.Errors, r.Achieved, r.P50, r.P90, r.P99, r.P999, r.Max)
	if r.FirstError != "" {
		fmt.Printf("          first error: %s\n", r.FirstError)
	}
}

// store names the in-process bootstrap's database kind ("" with --url).
func (b *directoryBench) store() string {
	switch {
	case b.url != "":
		return ""
	case b.db != "":
		return "postgres"
	}
	return "sqlite"
}

func benchAnnouncement(id string, i int, started time.Time, version uint64, viewers int) api.ListingUpdate {
	words := []string{"sunrise", "cooking", "music", "football", "coding", "harbour", "city", "garden"}
	title := strings.Join([]string{words[i%len(words)], words[(i/len(words))%len(words)], "live"}, " ")
	return api.ListingUpdate{Title: title, Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + strings.Split(id, ".")[0],
		Started: started, Version: version, Viewers: viewers}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
