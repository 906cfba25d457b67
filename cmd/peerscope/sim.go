//go:build !light

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh/sim"
)

func runSim(ctx context.Context, args []string) error {
	d := sim.DefaultConfig()
	fs := newFlagSet("sim", "[flags]", simHelp)
	nodes := fs.Int("nodes", d.Nodes, "viewers (the broadcaster comes on top)")
	duration := fs.Duration("duration", d.Duration, "simulated time")
	bitrate := bitrateFlag(d.Bitrate)
	fs.Var(&bitrate, "bitrate", `stream bitrate in bit/s: "2.5M", "2500k" or plain bps`)
	chunk := fs.Duration("chunk", d.ChunkInterval, "chunk duration: the broadcaster cuts one chunk this often")
	playout := fs.Duration("playout", d.Playout, "playout delay: a chunk counts as on time if held by capture + playout")
	churn := fs.Float64("churn", d.Churn, "viewers leaving per minute, as a fraction of those present (as many arrive); 0.1 = 10%/min")
	seed := fs.Uint64("seed", d.Seed, "seed of every random draw; the same seed gives the same report")
	seeds := fs.String("seeds", "", `run once per seed of this list ("1-20", "1,3,5-7") instead of --seed, a line each and a summary: one seed is one draw, and a change to the tree is judged on many`)
	parallel := fs.Int("parallel", 1, "with --seeds: how many runs at once (one core and one run's memory each)")
	jsonOut := fs.Bool("json", false, "print the report as JSON on the last line of stdout")
	loss := fs.Float64("loss", d.Loss, "per-packet loss probability; a message with a lost packet arrives one RTT late")
	sourceSlots := fs.Int("source-slots", d.SourceSlots, "the broadcaster's child slots (its upload is sized for them)")
	headroom := fs.Float64("headroom", d.Headroom, "a relay's slots are its upload over the bitrate times this (the broadcaster's upload is its slots times the bitrate times this); for tuning sweeps")
	arrive := fs.Duration("arrive", d.ArrivalWindow, "the viewers arrive over this much time at the start")
	reset := fs.Float64("reset", d.ResetProb, "probability that a departing viewer's connections reset (its neighbours learn at once)")
	forgers := fs.Int("forgers", d.Forgers, "relaying viewers that forge every chunk they forward (an attack to survive)")
	sybils := fs.Int("sybils", d.Sybils, "peers on top of --nodes that claim all the capacity there is, lie in pongs, accept children and never forward a chunk")
	padders := fs.Int("padders", d.Padders, "relaying viewers that append --pad-bytes of an unknown field to every chunk they send")
	padBytes := fs.Int("pad-bytes", d.PadBytes, "what a padder appends to each chunk")
	killAt := fs.Duration("kill-at", d.KillAt, "with --kill-fraction: when to kill that fraction of the viewers at once, with no goodbye")
	killFraction := fs.Float64("kill-fraction", d.KillFraction, "fraction of the viewers present killed at --kill-at (default: half the run)")
	beat := fs.Duration("beat", d.BeatInterval, "how often viewers hear the broadcaster's chat beat, which gives the live edge (0: never)")
	uplink := fs.String("uplink", d.Uplink.String(), `how an uplink orders messages to different peers: "fifo" (one queue, in the order sent) or "fair" (a queue per peer, served in turn, like parallel streams)`)
	forward := fs.String("forward", d.Forward.String(), `how relays pass chunks on: "store" (once the whole chunk has arrived) or "cut" (each --fragment as soon as it has arrived and verified)`)
	fragment := fs.Int("fragment", sim.DefaultFragment, "with --forward cut: fragment size in bytes")
	stripes := fs.Int("stripes", 0, "split each chunk into N fragments and --parity parity fragments, each over a tree of its own, a relay interior in one (SplitStream); a viewer plays a chunk with any N of them (0: one tree)")
	parity := fs.Int("parity", 1, "with --stripes: parity fragments a chunk has on top, each over a tree of its own (any N of the N+parity play)")
	tick := fs.Duration("tick", d.TickInterval, "how often each node's Tick is called (mesh asks for at most HeartbeatInterval/2 = 125ms)")
	statusInterval := fs.Duration("status-interval", 0, "how often, at most, a node reports a change to its parent (0: mesh's default, 250ms); for tuning sweeps")
	earlySlots := fs.Int("early-slots", 0, "relays with at least this many slots attaching 3+ levels deep look for a shallower place soon (0: mesh's default, 4; -1: never); for tuning sweeps")
	progress := fs.Bool("progress", false, "report progress on stderr every 10 s of simulated time")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memprofile := fs.String("memprofile", "", "write a heap profile (live objects and allocations) at the end of the run to this file")
	trace := fs.Int("trace", 0, "print on stderr every tree event of this viewer and of its parent and grandparent (the report's stall_worst_node is one worth tracing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("sim", "unexpected argument %q", fs.Arg(0))
	}
	cfg := d
	cfg.Nodes, cfg.Duration, cfg.Bitrate = *nodes, *duration, int64(bitrate)
	cfg.ChunkInterval, cfg.Playout, cfg.Churn, cfg.Seed = *chunk, *playout, *churn, *seed
	cfg.Loss, cfg.SourceSlots, cfg.ArrivalWindow = *loss, *sourceSlots, *arrive
	cfg.Headroom, cfg.Stripes, cfg.Parity = *headroom, *stripes, *parity
	cfg.ResetProb, cfg.Forgers, cfg.TickInterval = *reset, *forgers, *tick
	cfg.Sybils, cfg.Padders, cfg.PadBytes = *sybils, *padders, *padBytes
	cfg.KillAt, cfg.KillFraction, cfg.BeatInterval = *killAt, *killFraction, *beat
	cfg.Mesh.StatusInterval, cfg.Mesh.EarlyMoveSlots = *statusInterval, *earlySlots
	if cfg.KillFraction > 0 && cfg.KillAt == 0 {
		cfg.KillAt = cfg.Duration / 2
	}
	if err := simNetwork(&cfg, *uplink, *forward, *fragment); err != nil {
		return err
	}
	if cfg.Duration <= 0 {
		return usagef("sim", "--duration must be positive")
	}

	simGC()
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	heapFile, err := createHeapProfile(*memprofile)
	if err != nil {
		return err
	}
	defer heapFile.Close() // written and closed at the end; this for a run cut short
	var heapErr error
	if *progress || heapFile != nil {
		cfg.Progress = simProgress(*progress, heapFile, cfg.Duration, &heapErr)
	}
	if *seeds != "" {
		return simSeeds(ctx, cfg, *seeds, *parallel, *jsonOut, *trace > 0 || *progress || heapFile != nil)
	}
	if *trace > 0 {
		cfg.TraceNode = int32(*trace)
		cfg.Trace = func(line string) { fmt.Fprintln(os.Stderr, "trace:", line) }
	}
	r, err := sim.Run(ctx, cfg)
	if err != nil {
		return simErr(err)
	}
	if heapErr != nil {
		return heapErr
	}
	printSimSummary(os.Stdout, r)
	if *jsonOut {
		fmt.Println(r.JSON())
	}
	return nil
}

// simErr is what a run's error means to the command: a configuration the
// simulator refuses is a usage error, and a signal's stop no error at all
// (what is printed stands).
func simErr(err error) error {
	switch {
	case errors.Is(err, sim.ErrInvalidConfig):
		return usagef("sim", "%v", err)
	case errors.Is(err, context.Canceled):
		return nil
	}
	return err
}

// simGC sets the collector for a simulation unless GOGC says otherwise: the
// heap is mostly long-lived node state, and collecting at 3x instead of 2x
// the live heap saves a fifth of the CPU.
func simGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// simNetwork sets the uplink and forwarding models named by the flags.
func simNetwork(cfg *sim.Config, uplink, forward string, fragment int) error {
	switch uplink {
	case "fifo":
		cfg.Uplink = sim.UplinkFIFO
	case "fair":
		cfg.Uplink = sim.UplinkFair
	default:
		return usagef("sim", "--uplink %q: want fifo or fair", uplink)
	}
	switch forward {
	case "store":
		cfg.Forward = sim.ForwardStore
	case "cut":
		cfg.Forward = sim.ForwardCut
	default:
		return usagef("sim", "--forward %q: want store or cut", forward)
	}
	cfg.Fragment = fragment
	return nil
}

// simProgress is a sim.Config.Progress that reports progress on stderr (if
// progress) and writes a heap profile to heapFile (if not nil) at the end of
// the run, its error to *heapErr. The last call comes while the simulation
// is still live, so the profile shows what it holds.
func simProgress(progress bool, heapFile *os.File, total time.Duration, heapErr *error) func(time.Duration) {
	start := time.Now()
	return func(at time.Duration) {
		if progress {
			fmt.Fprintf(os.Stderr, "sim: %v of %v simulated, %.0f s wall\n", at, total, time.Since(start).Seconds())
		}
		if at == total {
			*heapErr = writeHeapProfile(heapFile)
		}
	}
}

// printSimSummary writes the report as a table for people.
func printSimSummary(w io.Writer, r *report.Report) {
	t := newReportTable(w, r, 0)
	t.row("run", "%d viewers, %s simulated, %.2f Mb/s in %.0f ms chunks, playout %.1f s, churn %g/min, seed %d",
		r.Nodes, time.Duration(r.DurationS*float64(time.Second)), float64(r.BitrateBps)/1e6, r.ChunkMs, r.PlayoutMs/1000, r.Churn, r.Seed)
	t.delivery()
	t.row("latency ms", "%s   (p99.9 %.0f)", t.q(r.LatencyMs), t.x("latency_p999_ms"))
	if r.Stretch != nil {
		t.row("stretch", "p50 %.2f  p99 %.2f", r.Stretch.P50, r.Stretch.P99)
	}
	fwd := "store and forward"
	if f := t.x("fragment_bytes"); f > 0 {
		fwd = fmt.Sprintf("cut-through, %.0f-byte fragments", f)
	}
	t.row("per hop", "queue %.1f  uplink %.1f  propagation %.1f ms (means; %s)", t.x("hop_wait_mean_ms"), t.x("hop_uplink_mean_ms"), t.x("hop_prop_mean_ms"), fwd)
	t.row("max depth", "%d at %.0f s   (%.0f once settled, mean %.2f at the end)", r.MaxDepth, t.x("max_depth_at_s"), t.x("max_depth_settled"), t.x("depth_mean_end"))
	t.row("join ms", "%s", t.q(r.JoinMs))
	t.row("start-up ms", "p50 %.0f  p99 %.0f  max %.0f   (arrival -> first chunk on time; %.0f never)", t.x("startup_p50_ms"), t.x("startup_p99_ms"), t.x("startup_max_ms"), t.x("never_started"))
	t.costs()
	t.row("churn", "%.0f joins, %.0f leaves, %.0f rejoins, %.0f moves, %.0f pulls, %.0f forged",
		t.x("joins"), t.x("leaves"), t.x("rejoins"), t.x("moves"), t.x("pulls"), t.x("forged"))
	t.adversaries()
	t.row("wall", "%.1f s, peak RSS %.0f MiB", r.WallS, float64(r.RSSBytes)/(1<<20))
	t.flush(w)
}

// simHelp is what 'peerscope sim --help' says before the flags.
const simHelp = `
Simulates the relay tree: one broadcaster and thousands of viewers, each
running the real mesh state machine, over a modelled network, in one thread
on a virtual clock. The same seed gives the same run.

The network: nodes cluster in a few regions on a plane (one-way delay 2 ms to
~150 ms); each viewer is a phone (~1 Mb/s up, relays nothing), a home link
(5-20 Mb/s) or a well-connected machine (50-100 Mb/s), relaying to as many
children as its upload carries with 1.5x headroom (at most 16); every message
queues on its sender's uplink; a lost packet costs its message one round trip.
Viewers arrive over the first 20 s; with --churn, viewers then leave abruptly
(half of them resetting their connections) and as many new ones arrive.
Every viewer hears the broadcaster's chat beat (--beat), which tells it how
far the broadcast has gone.

Adversaries: --sybils N peers (on top of --nodes) claim all the capacity there
is, answer pings with depth 0 and a time from the future, accept children and
send them heartbeats but never a chunk; --padders N relaying viewers append
--pad-bytes to every chunk frame they send; --kill-fraction F kills that
fraction of the viewers at --kill-at, at once, with no goodbye. Continuity
counts the honest viewers only; the report adds each one's longest stall
(consecutive chunks missing their deadline, from its first chunk on time:
what came late before it is start-up; with a kill, stall_after_kill_max_ms
and stalled_after_kill count from the kill on), withheld_rejoin_ms (attached
under a sybil -> under an honest parent) and the pad bytes relayed by honest
nodes (pad_bytes_relayed: 0 when every relay forwards the canonical chunk).

With --stripes N the stream is split SplitStream-wise, as a node does with
"broadcast --stripes": each chunk into N fragments and --parity P parity
fragments, each over a tree of its own, a relay interior in one tree with its
whole upload there; a viewer plays a chunk once any N of its fragments are in.
The simulated relays take the trees in turn (nodes: by a hash of the peer ID,
lending spare slots to trees short of relays, which the simulator leaves out).
The trees share their viewers (the same arrivals, departures and kill); the
report's players are the run's, with each tree's depth and source upload in
extra (stripeK_*). It costs N+P times the work.

With --seeds it runs once per seed of the list and prints a line per seed and
what they come to together (how many had no honest viewer stalled over 2 s,
after the kill in a kill run, and there split by how many of the
broadcaster's children the kill took), with --json each report after its
line: one seed is one draw of a chaotic system, and a change is judged on
many.

It prints a summary table, and with --json the report as the last line of
stdout (the JSON shape 'peerscope bench' prints too). Continuity counts, for
each viewer, the chunks due after its first chunk that it held before
capture + playout; latency is capture -> receipt over every chunk delivered.

Examples:
  peerscope sim --nodes 10000 --duration 10m --churn 0.1 --seed 1 --json
  peerscope sim --nodes 10000 --duration 10m --churn 0.1 --sybils 500
  peerscope sim --nodes 10000 --duration 10m --kill-at 5m --kill-fraction 0.3
  peerscope sim --nodes 10000 --duration 5m30s --kill-at 5m --kill-fraction 0.3 --seeds 1-20 --parallel 2
  peerscope sim --nodes 10000 --duration 5m30s --kill-at 5m --kill-fraction 0.3 --stripes 4 --parity 2
  peerscope sim --nodes 1000 --duration 1m --bitrate 2500k --loss 0 --cpuprofile cpu.out`
