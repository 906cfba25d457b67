package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/peerscope/peerscope/internal/bench"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", "[flags]", `
Runs a broadcaster and a handful of viewers in this process, each a real
libp2p host on loopback, streaming synthetic signed chunks through the relay
tree (real video comes with the media package). Every couple of seconds it
prints the tree (indented by depth, with each node's child slots and its RTT
to its parent) and live figures: chunks, latency, rejoins. With --kill-every,
a relaying viewer is killed now and then (its host closed, no goodbye) and a
new one joins, so you can watch the tree heal. Stop it with Ctrl-C.`)
	viewers := fs.Int("viewers", 6, "viewer nodes")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	bitrate := bitrateFlag(1_000_000)
	fs.Var(&bitrate, "bitrate", `stream bitrate in bit/s: "2.5M", "1M" or plain bps`)
	chunk := fs.Duration("chunk", 200*time.Millisecond, "chunk duration")
	every := fs.Duration("every", 2*time.Second, "how often to print the tree")
	killEvery := fs.Duration("kill-every", 15*time.Second, "kill a relaying viewer this often and start a new one (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("demo", "unexpected argument %q", fs.Arg(0))
	}
	if *viewers < 1 || *chunk < 10*time.Millisecond || *every <= 0 {
		return usagef("demo", "need --viewers ≥ 1, --chunk ≥ 10ms and --every > 0")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	d := &demo{chunk: *chunk, size: int(int64(bitrate) * int64(*chunk) / 8 / int64(time.Second)), rng: rand.New(rand.NewPCG(1, 2))}
	defer d.close()
	if err := d.start(*viewers); err != nil {
		return err
	}
	go d.publish(ctx)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	var kill <-chan time.Time
	if *killEvery > 0 {
		kt := time.NewTicker(*killEvery)
		defer kt.Stop()
		kill = kt.C
	}
	for {
		select {
		case <-ctx.Done():
			d.print(os.Stdout)
			return nil
		case <-tick.C:
			d.print(os.Stdout)
		case <-kill:
			d.killRelay(os.Stdout)
		}
	}
}

// demoNode is one node of the demo and what it received.
type demoNode struct {
	name  string
	h     host.Host
	n     *p2p.Node
	slots int

	mu      sync.Mutex
	chunks  int
	latSum  time.Duration
	latN    int
	lastLat time.Duration
}

type demo struct {
	chunk time.Duration
	size  int
	rng   *rand.Rand

	root   *demoNode
	signer *p2p.Signer

	mu      sync.Mutex
	nodes   []*demoNode // viewers present
	next    int
	started time.Time
	seq     uint64
	killed  int
	rejoins uint64 // of killed nodes
}

func (d *demo) start(viewers int) error {
	h, err := bench.NewHost()
	if err != nil {
		return err
	}
	d.root = &demoNode{name: "broadcaster", h: h, slots: 2}
	if d.signer, err = p2p.HostSigner(h); err != nil {
		return err
	}
	cfg := d.config(d.root.slots)
	cfg.Self = p2p.Info(h)
	if d.root.n, err = p2p.New(h, cfg); err != nil {
		return err
	}
	d.started = time.Now()
	for range viewers {
		if err := d.addViewer(); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) config(slots int) mesh.Config {
	cfg := mesh.DefaultConfig()
	cfg.Root = p2p.Info(d.root.h)
	cfg.Broadcast = "demo"
	cfg.Slots = slots
	cfg.ChunkInterval = d.chunk
	return cfg
}

// addViewer starts a viewer; slots cycle through 2, 0, 1 so that the tree
// has a few levels.
func (d *demo) addViewer() error {
	h, err := bench.NewHost()
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.next++
	v := &demoNode{name: fmt.Sprintf("viewer %d", d.next), h: h, slots: []int{2, 0, 1}[(d.next-1)%3]}
	d.mu.Unlock()
	v.n, err = p2p.New(h, d.config(v.slots), p2p.WithDeliver(func(c *mesh.Chunk) {
		lat := time.Since(time.Unix(0, c.Wallclock))
		v.mu.Lock()
		v.chunks++
		v.latSum += lat
		v.latN++
		v.lastLat = lat
		v.mu.Unlock()
	}))
	if err != nil {
		_ = h.Close()
		return err
	}
	d.mu.Lock()
	d.nodes = append(d.nodes, v)
	d.mu.Unlock()
	return nil
}

func (d *demo) publish(ctx context.Context) {
	payload := make([]byte, d.size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	tk := time.NewTicker(d.chunk)
	defer tk.Stop()
	for {
		d.mu.Lock()
		seq := d.seq
		d.seq++
		d.mu.Unlock()
		c := &mesh.Chunk{Broadcast: "demo", Seq: seq, Wallclock: time.Now().UnixNano(), Payload: payload}
		if seq%10 == 0 {
			c.Flags = mesh.FlagKeyframe
		}
		d.signer.Sign(c)
		if err := d.root.n.Publish(ctx, c); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// killRelay closes the host of a viewer that has children, as a crash would,
// and starts a new viewer in its place.
func (d *demo) killRelay(w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d.mu.Lock()
	nodes := append([]*demoNode(nil), d.nodes...)
	d.mu.Unlock()
	var victim *demoNode
	for _, v := range nodes {
		if st, _, err := v.n.Status(ctx); err == nil && len(st.Children) > 0 {
			victim = v
			break
		}
	}
	if victim == nil {
		return
	}
	_, stats, _ := victim.n.Status(ctx)
	_ = victim.h.Close()
	_ = victim.n.Close()
	d.mu.Lock()
	d.nodes = removeNode(d.nodes, victim)
	d.killed++
	d.rejoins += stats.Rejoins
	d.mu.Unlock()
	fmt.Fprintf(w, "\n*** killed %s (a relay); its children rejoin on their own\n", victim.name)
	if err := d.addViewer(); err != nil {
		fmt.Fprintf(w, "start a viewer: %v\n", err)
	}
}

func removeNode(l []*demoNode, x *demoNode) []*demoNode {
	out := l[:0]
	for _, v := range l {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// print writes the tree and the live figures.
func (d *demo) print(w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d.mu.Lock()
	nodes := append([]*demoNode{d.root}, d.nodes...)
	seq, killed, rejoins := d.seq, d.killed, d.rejoins
	d.mu.Unlock()

	type row struct {
		node  *demoNode
		st    mesh.Status
		stats mesh.Stats
	}
	byID := map[mesh.PeerID]*row{}
	children := map[mesh.PeerID][]*row{}
	var detached []*row
	for _, nd := range nodes {
		st, stats, err := nd.n.Status(ctx)
		if err != nil {
			continue
		}
		r := &row{nd, st, stats}
		byID[nd.n.Info().ID] = r
		rejoins += stats.Rejoins
	}
	for _, nd := range nodes[1:] {
		r := byID[nd.n.Info().ID]
		if r == nil {
			continue
		}
		if r.st.Parent == "" || byID[r.st.Parent] == nil {
			detached = append(detached, r)
			continue
		}
		children[r.st.Parent] = append(children[r.st.Parent], r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n--- %.0fs: %d chunks published (%.1f Mb/s, %v chunks), %d viewers, %d relays killed, %d rejoins\n",
		time.Since(d.started).Seconds(), seq, float64(d.size)*8/d.chunk.Seconds()/1e6, d.chunk, len(nodes)-1, killed, rejoins)
	var walk func(r *row, depth int)
	walk = func(r *row, depth int) {
		nd := r.node
		fmt.Fprintf(&b, "%s%-12s depth %d  slots %d  %s", strings.Repeat("  ", depth), nd.name, depth, nd.slots, short(nd.n.Info().ID))
		if depth > 0 {
			pid, _ := p2p.PeerID(r.st.Parent)
			if rtt := nd.h.Peerstore().LatencyEWMA(pid); rtt > 0 {
				fmt.Fprintf(&b, "  rtt %.2fms", float64(rtt)/1e6)
			}
			nd.mu.Lock()
			avg := time.Duration(0)
			if nd.latN > 0 {
				avg = nd.latSum / time.Duration(nd.latN)
			}
			fmt.Fprintf(&b, "  chunks %d  latency %.1fms (avg %.1fms)", nd.chunks, ms(nd.lastLat), ms(avg))
			nd.latSum, nd.latN = 0, 0
			nd.mu.Unlock()
		}
		b.WriteString("\n")
		kids := children[nd.n.Info().ID]
		sort.Slice(kids, func(i, j int) bool { return kids[i].node.name < kids[j].node.name })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	if r := byID[d.root.n.Info().ID]; r != nil {
		walk(r, 0)
	}
	for _, r := range detached {
		fmt.Fprintf(&b, "(joining) %s  slots %d  %s\n", r.node.name, r.node.slots, r.st.State)
	}
	io.WriteString(w, b.String())
}

func short(id mesh.PeerID) string {
	if len(id) > 6 {
		return "…" + string(id[len(id)-6:])
	}
	return string(id)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (d *demo) close() {
	d.mu.Lock()
	nodes := append([]*demoNode(nil), d.nodes...)
	d.mu.Unlock()
	if d.root != nil {
		nodes = append(nodes, d.root)
	}
	for _, nd := range nodes {
		if nd.n != nil {
			_ = nd.n.Close()
		}
		_ = nd.h.Close()
	}
}
