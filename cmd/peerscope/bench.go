//go:build !light

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/peerscope/peerscope/internal/bench"
	"github.com/peerscope/peerscope/internal/report"
)

func runBench(ctx context.Context, args []string) error {
	if isDirectoryBench(args) {
		return runDirectoryBench(ctx, args)
	}
	d := bench.DefaultConfig()
	fs := newFlagSet("bench", "[flags]", benchHelp)
	mode := fs.String("mode", "tree", `"tree", "gossipsub", "star", "all" or a comma list`)
	nodes := fs.Int("nodes", d.Nodes, "libp2p hosts, the broadcaster included")
	duration := fs.Duration("duration", d.Duration, "how long the broadcaster streams, per mode")
	bitrate := bitrateFlag(d.Bitrate)
	fs.Var(&bitrate, "bitrate", `stream bitrate in bit/s: "2.5M", "2500k" or plain bps`)
	chunk := fs.Duration("chunk", d.ChunkInterval, "chunk duration: the broadcaster cuts one chunk this often")
	keyframe := fs.Duration("keyframe", d.KeyframeInterval, "a keyframe chunk this often (a joining viewer is backfilled from the latest)")
	playout := fs.Duration("playout", d.Playout, "playout delay: a chunk is on time if held by capture + playout")
	churn := fs.Float64("churn", d.Churn, "viewers killed per minute as a fraction of those present (as many start); 0.1 = 10%/min")
	seed := fs.Uint64("seed", d.Seed, "seed of the slot draws, arrivals and churn")
	slots := fs.String("slots", "0:0.3,3:0.5,8:0.2", "viewers' child slots as slots:share pairs")
	sourceSlots := fs.Int("source-slots", d.SourceSlots, "the broadcaster's child slots (tree)")
	arrive := fs.Duration("arrive", 0, "the viewers start over this much time (0: a third of --duration, at most 20s)")
	candidates := fs.Int("candidates", d.Candidates, "attached viewers handed to a new viewer besides the broadcaster (tree)")
	gossipPeers := fs.Int("gossip-peers", d.GossipPeers, "random nodes a viewer connects to (gossipsub)")
	private := fs.Bool("private", false, "a private broadcast: sealed chunks, new epochs wrapped for every viewer, every chunk opened before it counts")
	rekeyEvery := fs.Duration("rekey-every", 5*time.Minute, "with --private: a new epoch this often")
	privFresh := fs.Bool("private-fresh", false, "with --private: open every chunk into fresh memory, as members did before they opened parts at play time (for comparison)")
	chatOn := fs.Bool("chat", false, "join every host to the chat and measure comments, hearts and the live count (tree mode)")
	sybils := fs.Int("sybils", 0, "viewers (of --nodes) that claim all the capacity there is, lie in pongs, accept children and never forward a chunk (tree mode)")
	padders := fs.Int("padders", 0, "viewers (of --nodes) that append --pad-bytes of an unknown field to every chunk they send (tree mode)")
	padBytes := fs.Int("pad-bytes", d.PadBytes, "what a padder appends to each chunk")
	killAt := fs.Duration("kill-at", 0, "with --kill-fraction: when to kill that fraction of the viewers at once, with no goodbye (default: half the run)")
	killFraction := fs.Float64("kill-fraction", 0, "fraction of the honest viewers present killed at --kill-at (tree mode)")
	stripes := fs.Int("stripes", 0, "split each chunk into N fragments and --parity parity fragments, each over a tree of its own, a viewer relaying in one (tree mode; 0: one tree)")
	parity := fs.Int("parity", 2, "with --stripes: parity fragments on top (any N of the N+parity make the chunk)")
	sample := fs.Duration("sample", 0, "sample the process's RSS and goroutines this often and report them at the start, middle and end (a soak)")
	jsonOut := fs.Bool("json", false, "print one JSON report line per mode instead of tables")
	verbose := fs.Bool("v", false, "log the nodes' warnings to stderr")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	slowLog := fs.String("slow-log", "", "write every chunk that reached a viewer later than --slow-after (after its join) to this file")
	slowAfter := fs.Duration("slow-after", 50*time.Millisecond, "latency that --slow-log reports")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench", "unexpected argument %q", fs.Arg(0))
	}
	modes, err := parseModes(*mode)
	if err != nil {
		return usagef("bench", "%v", err)
	}
	mix, err := bench.ParseSlotMix(*slots)
	if err != nil {
		return usagef("bench", "%s", strings.TrimPrefix(err.Error(), "bench: "))
	}
	cfg := d
	cfg.Nodes, cfg.Duration, cfg.Bitrate, cfg.ChunkInterval = *nodes, *duration, int64(bitrate), *chunk
	cfg.KeyframeInterval, cfg.Playout, cfg.Churn, cfg.Seed = *keyframe, *playout, *churn, *seed
	cfg.SlotMix, cfg.SourceSlots, cfg.ArrivalWindow = mix, *sourceSlots, *arrive
	cfg.Candidates, cfg.GossipPeers = *candidates, *gossipPeers
	cfg.Chat = *chatOn
	cfg.Private, cfg.RekeyEvery, cfg.PrivateFresh = *private, *rekeyEvery, *privFresh
	cfg.Sybils, cfg.Padders, cfg.PadBytes = *sybils, *padders, *padBytes
	cfg.KillAt, cfg.KillFraction, cfg.Sample = *killAt, *killFraction, *sample
	cfg.Stripes, cfg.Parity = striping(*stripes, *parity)
	cfg.Progress = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...) }
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if *slowLog != "" {
		f, err := os.Create(*slowLog)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.SlowLog, cfg.SlowThreshold = f, *slowAfter
	}
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	for _, m := range modes {
		cfg.Mode = m
		r, err := bench.Run(ctx, cfg)
		if errors.Is(err, bench.ErrInvalidConfig) {
			return usagef("bench", "%s", strings.TrimPrefix(err.Error(), "bench: "))
		}
		if ctx.Err() != nil {
			return nil // stopped by a signal
		}
		if err != nil {
			return fmt.Errorf("bench %s: %w", m, err)
		}
		if *jsonOut {
			fmt.Println(r.JSON())
		} else {
			printBenchSummary(os.Stdout, r)
		}
	}
	return nil
}

func parseModes(s string) ([]string, error) {
	if s == "all" {
		return bench.Modes, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(bench.Modes, m) {
			return nil, fmt.Errorf("unknown mode %q (want %s or all)", m, strings.Join(bench.Modes, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// printBenchSummary writes one mode's report as a table for people.
func printBenchSummary(w io.Writer, r *report.Report) {
	t := newReportTable(w, r, 1)
	t.row("mode", "%s", r.Mode)
	t.row("run", "%d hosts (1 broadcaster), %s, %.2f Mb/s in %.0f ms chunks, playout %.1f s, churn %g/min, seed %d",
		r.Nodes, time.Duration(r.DurationS*float64(time.Second)), float64(r.BitrateBps)/1e6, r.ChunkMs, r.PlayoutMs/1000, r.Churn, r.Seed)
	t.delivery()
	t.row("latency ms", "%s   (with the join backfill from the last keyframe: p99 %.1f)", t.q(r.LatencyMs), t.x("latency_all_p99"))
	t.row("max depth", "%d", r.MaxDepth)
	t.row("join ms", "%s", t.q(r.JoinMs))
	t.costs()
	if r.ChatLatencyMs != nil {
		t.row("chat latency ms", "%s", t.q(*r.ChatLatencyMs))
	}
	if r.HeartsBroadcasterInBps > 0 {
		t.row("hearts in", "%.0f B/s at the broadcaster", r.HeartsBroadcasterInBps)
	}
	if r.ViewerCountSettleMs > 0 {
		t.row("count settles", "%.0f ms after 10%% left", r.ViewerCountSettleMs)
	}
	t.adversaries()
	t.soak()
	t.row("wall", "%.1f s, RSS %.0f MiB", r.WallS, float64(r.RSSBytes)/(1<<20))
	t.flush(w)
	fmt.Fprintln(w)
}

// benchHelp is what 'peerscope bench --help' says before the flags.
const benchHelp = `
Measures the relay tree with real libp2p hosts in this process on loopback
TCP (Noise, yamux): one broadcaster and --nodes-1 viewers (--nodes counts the
broadcaster), synthetic chunks of bitrate x chunk / 8 bytes signed with the
broadcaster's host key, at the bitrate.

Modes (--mode, one or a comma list, or "all"; several run one after another
in this process and print one report each):
  tree       the relay tree (mesh over mesh/p2p)
  gossipsub  the same signed chunks flooded over one GossipSub topic, default
             parameters; each viewer connects to --gossip-peers random nodes
  star       the broadcaster sends every chunk to every viewer directly
  directory  not the tree: a bootstrap's directory API under a constant
             request rate (its own flags: 'peerscope bench --mode directory --help')

Viewers arrive evenly over --arrive (default a third of the run, at most
20 s) and are measured from their own first chunk, as in 'peerscope sim':
continuity counts the chunks due after that first chunk that were held by
capture + playout; latency is capture -> receipt over every chunk received.
Slots: each viewer draws its child slots from --slots (default 30% none, 50%
three, 20% eight); the broadcaster has --source-slots. With --churn F,
viewers are killed (host closed, no goodbye) at F x viewers per minute after
the arrivals, and as many new ones start.

With --chat (tree mode), every host also joins the broadcast's chat (one
GossipSub router each, as a node) and, after the arrivals, the run measures
for 10 s comments from random viewers (send -> acceptance at every other
node: chat_latency_ms), for 15 s hearts tapped 5 times a second at every
viewer, which go up the tree as a node's do (the broadcaster's inbound
chat-topic bytes per second: hearts_broadcaster_in_bps), then, 3 s later,
kills 10 % of the viewers (no goodbye) and times how long until the
broadcaster's live count is exact (viewer_count_settle_ms, at most 15 s).
--duration must leave 43 s after --arrive.

It prints a table per mode, or with --json one JSON line per mode (the shape
'peerscope sim' prints). Progress goes to stderr.

Adversaries (tree mode): --sybils N of the viewers claim all the capacity
there is, answer pings with depth 0 and a time from the future, accept
children and send them heartbeats but never a chunk; --padders N append
--pad-bytes to every chunk frame they send (both real hosts whose mesh/p2p
Tree filters what it sends: p2p.WithSendFilter, for tests and benchmarks
only); --kill-fraction F kills that fraction of the honest viewers at
--kill-at, at once. Continuity counts the honest viewers only; the report
adds each one's longest stall and withheld_rejoin_ms (attached under a
sybil -> under an honest parent). --sample T samples the process's RSS and
goroutines (a soak) and reports what the viewers that stayed missed.

Examples:
  peerscope bench --mode tree --nodes 100 --sybils 10 --duration 60s
  peerscope bench --mode tree --nodes 100 --kill-fraction 0.3 --duration 60s
  peerscope bench --mode tree --nodes 50 --duration 20m --churn 0.1 --sample 10s
  peerscope bench --mode tree,gossipsub,star --nodes 100 --bitrate 2.5M --chunk 200ms --duration 60s --json
  peerscope bench --mode tree --nodes 100 --churn 0.1 --playout 2s --duration 60s
  peerscope bench --mode tree --nodes 100 --chat --duration 65s --json`
