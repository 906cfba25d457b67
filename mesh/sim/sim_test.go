package sim

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

// small is a quick scenario: n viewers for d of simulated time.
func small(n int, d time.Duration, churn float64, seed uint64) Config {
	c := DefaultConfig()
	c.Nodes, c.Duration, c.Churn, c.Seed = n, d, churn, seed
	c.ArrivalWindow = 10 * time.Second
	return c
}

// comparable returns a report's JSON without the two figures that depend
// on the machine.
func comparable(r *report.Report) string {
	x := *r
	x.WallS, x.RSSBytes = 0, 0
	return x.JSON()
}

func run(t *testing.T, cfg Config) *report.Report {
	t.Helper()
	r, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeterministic(t *testing.T) {
	cfg := small(200, 40*time.Second, 0.2, 7)
	a, b := run(t, cfg), run(t, cfg)
	if comparable(a) != comparable(b) {
		t.Fatalf("same seed, different reports:\n%s\n%s", comparable(a), comparable(b))
	}
	if a.WallS <= 0 || a.RSSBytes == 0 {
		t.Errorf("wall_s %v, rss_bytes %v: want both measured", a.WallS, a.RSSBytes)
	}
	cfg.Seed = 8
	if c := run(t, cfg); comparable(c) == comparable(a) {
		t.Fatalf("seeds 7 and 8 gave the same report: %s", comparable(c))
	}
}

// TestTreeInvariants checks, every simulated second of a run with heavy
// churn, what must always hold: no node has more children than slots, no
// parent chain loops, and the simulator's picture of the tree (built from
// events) is the nodes' own.
func TestTreeInvariants(t *testing.T) {
	cfg := small(300, 90*time.Second, 0.3, 3)
	cfg.Forgers = 0
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0
	for at := time.Second; at <= cfg.Duration; at += time.Second {
		if err := s.RunUntil(t.Context(), at); err != nil {
			t.Fatal(err)
		}
		tc, err := s.CheckTree()
		if err != nil {
			t.Fatalf("at %v: %v", at, err)
		}
		if at > 20*time.Second {
			worst = max(worst, tc.Present-tc.Connected)
		}
	}
	r := s.Report()
	if r.Extra["loops_seen"] != 0 || r.Extra["over_slots"] != 0 {
		t.Fatalf("loops_seen %v, over_slots %v: want 0", r.Extra["loops_seen"], r.Extra["over_slots"])
	}
	if r.Extra["leaves"] < 50 {
		t.Fatalf("only %v departures: churn did not happen", r.Extra["leaves"])
	}
	t.Logf("most viewers cut off from the root at one moment after warm-up: %d of ~%d", worst, cfg.Nodes)
}

func TestNoChurnEveryoneAttachedAndFed(t *testing.T) {
	cfg := small(300, 60*time.Second, 0, 11)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunUntil(t.Context(), cfg.Duration); err != nil {
		t.Fatal(err)
	}
	tc, err := s.CheckTree()
	if err != nil {
		t.Fatal(err)
	}
	if tc.Present != cfg.Nodes || tc.Connected != tc.Present {
		t.Fatalf("%d of %d viewers connected to the root, want all of %d", tc.Connected, tc.Present, cfg.Nodes)
	}
	r := s.Report()
	t.Log(comparable(r))
	if r.DeliveredRatio < 0.99 {
		t.Errorf("delivered_ratio %v < 0.99", r.DeliveredRatio)
	}
	if r.Continuity < 0.99 {
		t.Errorf("continuity %v < 0.99", r.Continuity)
	}
	if r.RejoinMs != nil {
		t.Errorf("rejoin_ms %v without churn, want null", *r.RejoinMs)
	}
	if r.Extra["never_played"] != 0 || r.JoinMs.P50 <= 0 {
		t.Errorf("never_played %v, join p50 %v", r.Extra["never_played"], r.JoinMs.P50)
	}
	if r.SourceUploadRatio < 1 || r.SourceUploadRatio > 4 {
		t.Errorf("source_upload_ratio %v, want within [1, 4] with 3 source slots", r.SourceUploadRatio)
	}
}

func TestContinuityUnderChurn(t *testing.T) {
	cfg := small(400, 2*time.Minute, 0.1, 5)
	r := run(t, cfg)
	t.Log(comparable(r))
	if r.Continuity < 0.99 {
		t.Errorf("continuity %v < 0.99 with churn 0.1", r.Continuity)
	}
	if r.RejoinMs == nil || r.Extra["leaves"] == 0 {
		t.Errorf("churn 0.1 for 2 minutes: want departures and rejoin_ms, got %v leaves", r.Extra["leaves"])
	}
}

func TestForgersAreCaught(t *testing.T) {
	cfg := small(200, 40*time.Second, 0, 9)
	cfg.Forgers = 3
	r := run(t, cfg)
	if r.Extra["forged"] == 0 || r.Extra["lost_forged"] == 0 {
		t.Fatalf("forged %v, lost_forged %v: the forgers were never caught", r.Extra["forged"], r.Extra["lost_forged"])
	}
	if r.Extra["forged_delivered"] != 0 {
		t.Fatalf("%v forged chunks delivered to players", r.Extra["forged_delivered"])
	}
	if r.DeliveredRatio < 0.98 {
		t.Errorf("delivered_ratio %v with 3 forgers", r.DeliveredRatio)
	}
}

func TestLossDelaysButKeepsOrder(t *testing.T) {
	cfg := small(100, 20*time.Second, 0, 1)
	cfg.Loss = 0
	clean := run(t, cfg)
	cfg.Loss = 0.05
	lossy := run(t, cfg)
	if clean.Extra["messages_delayed"] != 0 || lossy.Extra["messages_delayed"] == 0 {
		t.Fatalf("messages_delayed %v without loss, %v with", clean.Extra["messages_delayed"], lossy.Extra["messages_delayed"])
	}
	if lossy.LatencyMs.P95 <= clean.LatencyMs.P95 {
		t.Errorf("p95 latency %v with 5%% loss, %v without: loss should cost", lossy.LatencyMs.P95, clean.LatencyMs.P95)
	}
}

func TestInvalidConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no viewers":   func(c *Config) { c.Nodes = 0 },
		"loss 1":       func(c *Config) { c.Loss = 1 },
		"negative":     func(c *Config) { c.Churn = -1 },
		"headroom":     func(c *Config) { c.Headroom = 0.5 },
		"huge chunks":  func(c *Config) { c.Bitrate = 1e9; c.ChunkInterval = time.Second },
		"bad class":    func(c *Config) { c.Classes = []Class{{Name: "x", Share: 1}} },
		"reset prob":   func(c *Config) { c.ResetProb = 2 },
		"many forgers": func(c *Config) { c.Forgers = c.Nodes + 1 },
		"fragment":     func(c *Config) { c.Forward, c.Fragment = ForwardCut, 100 },
		"forward":      func(c *Config) { c.Forward = 7 },
	} {
		c := DefaultConfig()
		mod(&c)
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New returned %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestQueueOrder(t *testing.T) {
	var q queue
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		q.push(event{at: rng.Int64N(100), to: int32(i)})
	}
	prev := event{at: -1}
	for q.Len() > 0 {
		e := q.pop()
		if e.at < prev.at || e.at == prev.at && e.to < prev.to {
			t.Fatalf("popped (%d, #%d) after (%d, #%d)", e.at, e.to, prev.at, prev.to)
		}
		prev = e
	}
}

func TestHistMatchesSample(t *testing.T) {
	h := newHist(0.1, 1000) // up to 100, the rest in the overflow
	var s report.Sample
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		x := float64(rng.IntN(1200)) / 10 // on bucket edges, so both are exact
		h.add(x)
		s.Add(x)
	}
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
		if a, b := h.q(q), s.Q(q); a != b {
			t.Errorf("q%v: hist %v, sample %v", q, a, b)
		}
	}
}

func TestVerifyCache(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	v := newVerifyCache("b", pub, 8)
	c := &chunk.Chunk{Broadcast: "b", Seq: 3, Payload: []byte("x")}
	c.Sign(key)
	for range 3 {
		if err := v.verify(c); err != nil {
			t.Fatal(err)
		}
	}
	f := *c
	f.Signature = append([]byte(nil), c.Signature...)
	f.Signature[0] ^= 1
	for range 2 {
		if err := v.verify(&f); !errors.Is(err, chunk.ErrBadSignature) {
			t.Fatalf("forged copy: %v", err)
		}
	}
	if v.checks != 2 {
		t.Fatalf("%d real checks for two distinct chunks, want 2", v.checks)
	}
	later := &chunk.Chunk{Broadcast: "b", Seq: 11, Payload: []byte("y")} // same slot, newer seq
	later.Sign(key)
	if err := v.verify(later); err != nil || v.checks != 3 {
		t.Fatalf("newer seq in the slot: %v, %d checks", err, v.checks)
	}
}

// BenchmarkSim1000 is the profiling target: 1,000 viewers, one simulated
// minute, churn 0.1.
//
//	go test ./mesh/sim -run - -bench Sim1000 -benchtime 1x -cpuprofile cpu.out
func BenchmarkSim1000(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Duration, cfg.Churn = 1000, time.Minute, 0.1
	for b.Loop() {
		if _, err := Run(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSim10k is the simulator's own cost at a scale where the nodes'
// state no longer fits in the caches: 10,000 viewers, one simulated minute,
// churn 0.1 (issue 17; docs/BENCHMARKS.md, "The simulator's own cost").
//
//	go test ./mesh/sim -run - -bench Sim10k -benchtime 1x -benchmem
func BenchmarkSim10k(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Duration, cfg.Churn = 10000, time.Minute, 0.1
	events := 0.0
	for b.Loop() {
		r, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Extra["events"]
	}
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
}

func TestFairUplink(t *testing.T) {
	cfg := small(300, 60*time.Second, 0.1, 4)
	cfg.Uplink = UplinkFair
	a, b := run(t, cfg), run(t, cfg)
	if comparable(a) != comparable(b) {
		t.Fatal("fair uplink: same seed, different reports")
	}
	if a.Continuity < 0.99 || a.Extra["over_slots"] != 0 || a.Extra["loops_seen"] != 0 {
		t.Fatalf("fair uplink: continuity %v, over_slots %v, loops %v", a.Continuity, a.Extra["over_slots"], a.Extra["loops_seen"])
	}
	cfg.Uplink = UplinkFIFO
	if c := run(t, cfg); comparable(c) == comparable(a) {
		t.Fatal("fifo and fair uplinks gave the same report")
	}
}

// TestStallCountsFromPictureStart: a joiner whose first chunks came
// already late (its parent's backfill from an old keyframe) has no picture
// yet: that is start-up, and its stalls count from its first chunk held by
// its deadline. Before, a run of late chunks from the very first one
// counted as a stall of the whole start-up.
func TestStallCountsFromPictureStart(t *testing.T) {
	p := playback{first: 0, lo: 1}
	for q := uint64(1); q <= 5; q++ {
		p.note(q, false) // late: the joiner's backfill
	}
	p.note(6, true)
	p.start = 6 // as deliver sets it: the first chunk on time
	for q := uint64(7); q <= 9; q++ {
		p.note(q, false)
	}
	p.note(10, true)
	p.advance(10)
	if p.maxRun != 3 || p.maxStart != 7 {
		t.Fatalf("longest stall %d chunks from %d, want 3 from 7 (after the picture started at 6)", p.maxRun, p.maxStart)
	}
	// Nothing on time yet: no stall, and nothing to take back later.
	q := playback{first: 0, lo: 1}
	for s := uint64(1); s <= 20; s++ {
		q.note(s, false)
	}
	q.advance(20)
	if q.maxRun != 0 {
		t.Fatalf("no picture yet, stall %d chunks: want 0", q.maxRun)
	}
}

// TestStallAfterKill: a stall that runs across the kill counts, from the
// kill on, only for its part after it; one that ends before counts not at
// all. The report's stall_after_kill_* say what the failure cost apart
// from the arrival burst, and stay within the run's longest stall.
func TestStallAfterKill(t *testing.T) {
	p := playback{first: 0, lo: 1, start: 1, split: 10}
	for q := uint64(1); q <= 20; q++ {
		p.note(q, q < 3 || q > 6 && q < 8 || q > 12 && q < 15 || q > 18)
	}
	p.advance(20)
	// Late: 3-6 (4, before the kill), 8-12 (5, of which 10-12 after it),
	// 15-18 (4, after it).
	if p.maxRun != 5 || p.maxStart != 8 || p.maxAfter != 4 || p.maxAfterStart != 15 {
		t.Fatalf("longest %d from %d, after the kill %d from %d: want 5 from 8, 4 from 15", p.maxRun, p.maxStart, p.maxAfter, p.maxAfterStart)
	}
	cfg := small(300, 40*time.Second, 0, 1)
	cfg.KillAt, cfg.KillFraction = 25*time.Second, 0.3
	r := run(t, cfg)
	after, ok := r.Extra["stall_after_kill_max_ms"]
	if !ok || after > r.Extra["stall_max_ms"] || r.Extra["stalled_after_kill"] > r.Extra["stalled_viewers"] {
		t.Fatalf("after the kill: longest stall %v ms (reported %v), %v stalled; whole run: %v ms, %v stalled",
			after, ok, r.Extra["stalled_after_kill"], r.Extra["stall_max_ms"], r.Extra["stalled_viewers"])
	}
	t.Logf("after the kill: longest stall %v ms, %v stalled, %v over 2 s", after, r.Extra["stalled_after_kill"], r.Extra["stalled_over_2s_after_kill"])
	// The viewers over 2 s are among those stalled, and there is one
	// exactly when the longest stall is over 2 s.
	if long := r.Extra["stalled_over_2s_after_kill"]; long > r.Extra["stalled_after_kill"] || (long > 0) != (after > longStallMs) {
		t.Fatalf("after the kill: %v viewers stalled over 2 s, %v stalled, the longest %v ms", long, r.Extra["stalled_after_kill"], after)
	}
	if at, ok := r.Extra["stall_after_kill_at_s"]; ok && at < 25 {
		t.Fatalf("the longest stall after the kill began at %v s, before it (25 s)", at)
	}
}

// TestKilledTop: the report says how many of the broadcaster's children
// the kill took and how many viewers were below them: all of them when
// every viewer is killed, none when the kill is of nobody.
func TestKilledTop(t *testing.T) {
	for _, c := range []struct {
		fraction float64
		all      bool
	}{{1, true}, {0.000001, false}} {
		cfg := small(300, 30*time.Second, 0, 1)
		cfg.KillAt, cfg.KillFraction = 25*time.Second, c.fraction
		r := run(t, cfg)
		top, below := r.Extra["killed_top"], r.Extra["killed_top_below"]
		switch {
		case c.all && (top != r.Extra["source_slots"] || top+below != 300):
			t.Errorf("kill all: took %v of the broadcaster's %v children with %v below; want all, 300 in all", top, r.Extra["source_slots"], below)
		case !c.all && (top != 0 || below != 0):
			t.Errorf("kill nobody: took %v of the broadcaster's children with %v below", top, below)
		}
	}
}

// TestTraceWorstStall: the report names the viewer with the longest stall,
// and a second run of the same seed traced on it tells that viewer's
// events and its late chunks, and nobody else's but its parent's and
// grandparent's.
func TestTraceWorstStall(t *testing.T) {
	cfg := small(300, 60*time.Second, 0.3, 3)
	r := run(t, cfg)
	worst, ok := r.Extra["stall_worst_node"]
	if !ok || r.Extra["stall_max_ms"] == 0 {
		t.Fatalf("churn 0.3 at seed 3: no stall to trace (stall_max_ms %v)", r.Extra["stall_max_ms"])
	}
	var lines []string
	cfg.TraceNode = int32(worst)
	cfg.Trace = func(l string) { lines = append(lines, l) }
	if again := run(t, cfg); comparable(again) != comparable(r) {
		t.Fatal("tracing changed the run")
	}
	self := fmt.Sprintf(" n%d (self) ", int(worst))
	var attached, late bool
	for _, l := range lines {
		attached = attached || strings.Contains(l, self+"attached")
		late = late || strings.Contains(l, self+"late chunk")
		if !strings.Contains(l, " (self) ") && !strings.Contains(l, " (parent) ") && !strings.Contains(l, " (grandparent) ") {
			t.Errorf("traced a stranger: %s", l)
		}
	}
	if !attached || !late {
		t.Errorf("trace of n%d: attached %v, late chunks %v; want both in %d lines", int(worst), attached, late, len(lines))
	}
}

// TestCutTimes checks the two ends of a chunk copy under cut-through
// (cut.go) against the batch formula: copy j of m starting at t0 has its
// head out at t0 + j·f and its last byte at t0 + m·ser − (m − j)·f; and a
// relay still receiving the chunk cannot finish a copy before its own
// last fragment is in, plus one fragment per copy.
func TestCutTimes(t *testing.T) {
	cfg := small(10, time.Second, 0, 1)
	cfg.Forward = ForwardCut
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	size := s.chunkSize
	c := &chunk.Chunk{Broadcast: s.broadcast, Seq: 5, Payload: make([]byte, size)}
	msg := &mesh.Message{Type: mesh.MsgChunk, Chunk: c}
	nd := &s.nodes[root]
	ser := int64(float64(size) * nd.nsPerByte)
	f := int64(float64(s.cfg.Fragment) * nd.nsPerByte)
	const t0 = int64(time.Second)

	// Three copies produced by one step: the first is sent while the
	// other two wait in the Ready being drained.
	rest := []mesh.Envelope{{Msg: msg}, {Msg: msg}}
	for j := int64(1); j <= 3; j++ {
		s.draining, s.drainRest = root, rest[j-1:]
		end, head := s.cutTimes(root, msg, size, t0+(j-1)*ser, ser)
		if want := t0 + j*f; head != want {
			t.Errorf("copy %d: head out at %d, want %d", j, head, want)
		}
		if want := t0 + 3*ser - (3-j)*f; end != want {
			t.Errorf("copy %d: last byte out at %d, want %d", j, end, want)
		}
	}

	// A relay whose own copy is still arriving: bound by its input.
	c2 := &chunk.Chunk{Broadcast: s.broadcast, Seq: 6, Payload: make([]byte, size)}
	msg2 := &mesh.Message{Type: mesh.MsgChunk, Chunk: c2}
	tail := t0 + 10*ser
	s.cutArrive(root, c2, tail)
	s.draining, s.drainRest = root, []mesh.Envelope{{Msg: msg2}}
	if end, _ := s.cutTimes(root, msg2, size, t0, ser); end != tail+f {
		t.Errorf("input-bound copy 1 ends at %d, want tail + f = %d", end, tail+f)
	}
	s.drainRest = nil
	if end, _ := s.cutTimes(root, msg2, size, t0+ser, ser); end != tail+2*f {
		t.Errorf("input-bound copy 2 ends at %d, want tail + 2f = %d", end, tail+2*f)
	}

	// Store and forward, and messages no bigger than a fragment: one end.
	small := &mesh.Message{Type: mesh.MsgPing}
	if end, head := s.cutTimes(root, small, 100, t0, 5); end != t0+5 || head != end {
		t.Errorf("small message: end %d head %d, want both %d", end, head, t0+5)
	}
	s.cfg.Forward = ForwardStore
	if end, head := s.cutTimes(root, msg, size, t0, ser); end != t0+ser || head != end {
		t.Errorf("store: end %d head %d, want both %d", end, head, t0+ser)
	}
}

// TestCutThrough: the same run with cut-through forwarding is
// deterministic, keeps the stream whole and takes latency down; store
// and forward, the default, reports no fragment size.
func TestCutThrough(t *testing.T) {
	cfg := small(300, 40*time.Second, 0, 5)
	store := run(t, cfg)
	cfg.Forward = ForwardCut
	a, b := run(t, cfg), run(t, cfg)
	if comparable(a) != comparable(b) {
		t.Fatal("cut-through: same seed, different reports")
	}
	if _, ok := store.Extra["fragment_bytes"]; ok || a.Extra["fragment_bytes"] != DefaultFragment {
		t.Errorf("fragment_bytes: store %v, cut %v", store.Extra["fragment_bytes"], a.Extra["fragment_bytes"])
	}
	if a.Continuity < 0.99 || a.Extra["over_slots"] != 0 || a.Extra["loops_seen"] != 0 {
		t.Fatalf("cut-through: continuity %v, over_slots %v, loops %v", a.Continuity, a.Extra["over_slots"], a.Extra["loops_seen"])
	}
	if a.LatencyMs.P50 >= store.LatencyMs.P50 || a.LatencyMs.P99 >= store.LatencyMs.P99 {
		t.Errorf("latency p50/p99: cut %v/%v, store %v/%v: want cut-through lower", a.LatencyMs.P50, a.LatencyMs.P99, store.LatencyMs.P50, store.LatencyMs.P99)
	}
	t.Logf("latency p50/p95/p99 ms: store %v/%v/%v, cut %v/%v/%v", store.LatencyMs.P50, store.LatencyMs.P95, store.LatencyMs.P99, a.LatencyMs.P50, a.LatencyMs.P95, a.LatencyMs.P99)
}
