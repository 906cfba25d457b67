//go:build !light

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
	"github.com/peerscope/peerscope/node"
)

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", "[flags]", `
Runs a broadcaster and a few viewers in this process, each a real node (a
libp2p host and a web server on loopback), streaming the built-in test clip
(640x360 H.264 + Opus, 10 s, looped) through the relay tree. The broadcaster
offers one child slot and the viewers 2, 1, 0, 2, 1, … so that the tree is
a few hops deep. It prints every node's player page (open any in a browser:
each plays what reached that node through the tree), then, every few seconds,
the tree (indented by depth) with each node's slots, RTT to its parent,
chunks, live latency (capture to receipt) and players. Stop it with Ctrl-C.`)
	viewers := fs.Int("viewers", 5, "viewer nodes")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	every := fs.Duration("every", 5*time.Second, "how often to print the tree")
	verbose := fs.Bool("v", false, "log what the nodes do to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("demo", "unexpected argument %q", fs.Arg(0))
	}
	if *viewers < 1 || *viewers > 50 || *every <= 0 {
		return usagef("demo", "need 1 ≤ --viewers ≤ 50 and --every > 0")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	d := &demo{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	defer d.close()
	if err := d.start(ctx, *viewers); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	d.printPages(ctx, os.Stdout)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.printTree(os.Stdout)
			return nil
		case <-tick.C:
			d.printTree(os.Stdout)
		}
	}
}

// demoNode is one node of the demo.
type demoNode struct {
	name string
	n    *node.Node
	b    *node.Broadcast

	// At the last print, for the figures over the interval.
	lastReceived uint64
	lastLatency  time.Duration
}

type demo struct {
	log     *slog.Logger
	nodes   []*demoNode // the broadcaster first
	started time.Time
}

func (d *demo) start(ctx context.Context, viewers int) error {
	root, err := node.New(ctx, node.Config{NoHTTPS: true, Slots: 1, Logger: d.log.With("name", "broadcaster")})
	if err != nil {
		return err
	}
	d.nodes = append(d.nodes, &demoNode{name: "broadcaster", n: root})
	src, err := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), ingest.WithLoop())
	if err != nil {
		return err
	}
	b, err := root.GoLive(ctx, node.LiveConfig{Title: "Peerscope demo: the test clip, looped", Source: src})
	if err != nil {
		return err
	}
	d.nodes[0].b = b
	d.started = time.Now()
	link := b.Link()
	fmt.Printf("Peerscope demo: the built-in test clip from a broadcaster through %d viewer nodes on loopback.\n", viewers)
	fmt.Printf("Link (peerscope watch LINK joins from another terminal):\n  %s\n", link)
	for i := range viewers {
		name := fmt.Sprintf("viewer %d", i+1)
		slots := []int{2, 1, node.NoRelay}[i%3]
		n, err := node.New(ctx, node.Config{NoHTTPS: true, Slots: slots, Logger: d.log.With("name", name)})
		if err != nil {
			return err
		}
		dn := &demoNode{name: name, n: n}
		d.nodes = append(d.nodes, dn)
		if dn.b, err = n.Watch(ctx, link); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// printPages waits (a while) for every viewer to be in the tree, then
// prints each node's player page and depth.
func (d *demo) printPages(ctx context.Context, w io.Writer) {
	deadline := time.Now().Add(20 * time.Second)
	depths := make([]int, len(d.nodes))
	for {
		all := true
		for i, dn := range d.nodes {
			depths[i] = d.depth(dn)
			all = all && depths[i] >= 0
		}
		if all || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprint(w, "\nPlayer pages (each plays what reached that node through the tree):\n")
	deepest := d.nodes[0]
	deepestDepth := 0
	for i, dn := range d.nodes {
		depth := "joining"
		if depths[i] >= 0 {
			depth = fmt.Sprintf("depth %d", depths[i])
		}
		fmt.Fprintf(w, "  %-12s %-8s  slots %d  %s\n", dn.name, depth, dn.b.Slots(), dn.b.URLs().Player)
		if depths[i] > deepestDepth {
			deepest, deepestDepth = dn, depths[i]
		}
	}
	fmt.Fprintf(w, "LL-HLS at the deepest node (ffplay, VLC):\n  %s\n", deepest.b.URLs().HLS)
	fmt.Fprintf(w, "Metrics of a node: %s/metrics\n", deepest.n.HTTPURL())
}

func (d *demo) depth(dn *demoNode) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := dn.b.Status(ctx)
	if err != nil {
		return -1
	}
	return st.Depth
}

// printTree writes the tree and each node's figures since the last print.
func (d *demo) printTree(w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	type row struct {
		dn *demoNode
		st node.TreeStatus
	}
	rows := map[peer.ID]*row{}
	children := map[peer.ID][]*row{}
	var detached []*row
	var rejoins uint64
	for _, dn := range d.nodes {
		st, err := dn.b.Status(ctx)
		if err != nil {
			continue
		}
		rows[dn.n.ID()] = &row{dn, st}
		rejoins += st.Mesh.Rejoins
	}
	for _, dn := range d.nodes[1:] {
		r := rows[dn.n.ID()]
		switch {
		case r == nil:
		case r.st.Depth < 0 || rows[r.st.Parent] == nil:
			detached = append(detached, r)
		default:
			children[r.st.Parent] = append(children[r.st.Parent], r)
		}
	}
	var b strings.Builder
	root := d.nodes[0]
	published := uint64(0)
	if r := rows[root.n.ID()]; r != nil {
		published = r.st.Received
	}
	fmt.Fprintf(&b, "\n--- %s: %d parts published", time.Since(d.started).Truncate(time.Second), published)
	if br := root.b.Announcement().Bitrate; br > 0 {
		fmt.Fprintf(&b, " (%.2f Mb/s)", float64(br)/1e6)
	}
	fmt.Fprintf(&b, ", %d viewers, %d rejoins\n", len(d.nodes)-1, rejoins)
	var walk func(r *row, depth int)
	walk = func(r *row, depth int) {
		dn, st := r.dn, r.st
		fmt.Fprintf(&b, "%s%-12s depth %d  slots %d  %s", strings.Repeat("  ", depth), dn.name, depth, st.Slots, shortPeer(dn.n.ID()))
		if depth > 0 {
			if rtt := dn.n.Host().Peerstore().LatencyEWMA(st.Parent); rtt > 0 {
				fmt.Fprintf(&b, "  rtt %.2fms", float64(rtt)/1e6)
			}
			fmt.Fprintf(&b, "  chunks %d  latency %.0fms", st.Received, ms(st.Latency))
			if n := st.Received - dn.lastReceived; n > 0 {
				fmt.Fprintf(&b, " (avg %.0fms)", ms((st.LatencySum-dn.lastLatency)/time.Duration(n)))
			}
			dn.lastReceived, dn.lastLatency = st.Received, st.LatencySum
		}
		if st.HLSRequests > 0 || st.WHEPSessions > 0 {
			fmt.Fprintf(&b, "  players: %d HLS requests, %d WebRTC", st.HLSRequests, st.WHEPSessions)
		}
		b.WriteString("\n")
		kids := children[dn.n.ID()]
		sort.Slice(kids, func(i, j int) bool { return kids[i].dn.name < kids[j].dn.name })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	if r := rows[root.n.ID()]; r != nil {
		walk(r, 0)
	}
	for _, r := range detached {
		fmt.Fprintf(&b, "(joining) %s  slots %d  %s\n", r.dn.name, r.st.Slots, r.st.State)
	}
	io.WriteString(w, b.String())
}

func shortPeer(id peer.ID) string {
	s := id.String()
	if len(s) > 6 {
		return "…" + s[len(s)-6:]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// close stops the viewers, then the broadcaster.
func (d *demo) close() {
	for i := len(d.nodes) - 1; i >= 0; i-- {
		_ = d.nodes[i].n.Close()
	}
}
