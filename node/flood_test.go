package node_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/node"
	"github.com/peerscope/peerscope/replay/swarm"
)

// floodAttempts is how many connection attempts TestFlood's attacker
// makes: CI's run is small; docs/BENCHMARKS.md's is
// go test -run TestFlood -v ./node -args -flood.attempts=10000.
var floodAttempts = flag.Int("flood.attempts", 1000, "connection attempts of TestFlood's attacker")

// floodIdle and floodMin make the flood also hold idle connections from
// that many more identities, for at least that long: past the connection
// manager's high water (192) and its one-minute grace, it trims the
// lowest-valued connections. (A bench option: a minute and more.)
var (
	floodIdle = flag.Int("flood.idle", 0, "identities of TestFlood's attacker that connect and stay idle")
	floodMin  = flag.Duration("flood.min", 0, "TestFlood's shortest flood (with -flood.idle, past the connection manager's grace)")
)

// relayEnv names the link a TestFloodRelayProcess joins: set, the test
// binary is TestFlood's relay, a process of its own so that its RSS is its
// own.
const relayEnv = "PEERSCOPE_FLOOD_RELAY"

// TestFloodRelayProcess is TestFlood's relay when the test binary runs as
// it (relayEnv set): a node that relays to two, prints its libp2p address,
// and runs until its stdin closes.
func TestFloodRelayProcess(t *testing.T) {
	l := os.Getenv(relayEnv)
	if l == "" {
		t.Skip("the relay process of TestFlood (runs when TestFlood starts it)")
	}
	lk, err := link.Parse(l)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, node.Config{Slots: 2})
	if _, err := n.Watch(t.Context(), lk); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RELAY %s/p2p/%s\n", n.Host().Addrs()[0], n.ID())
	go func() {
		for {
			time.Sleep(250 * time.Millisecond) // a sampling period, not a wait for anything
			fmt.Printf("GOROUTINES %d\n", runtime.NumGoroutine())
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// relay is TestFlood's relay process: its process, its libp2p address,
// and its goroutines as it last reported them.
type relay struct {
	proc       *os.Process
	info       peer.AddrInfo
	goroutines atomic.Int64
}

// relayProcess starts TestFloodRelayProcess on a link.
func relayProcess(t *testing.T, l link.Link) *relay {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFloodRelayProcess$", "-test.v")
	cmd.Env = append(os.Environ(), relayEnv+"="+l.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	r := &relay{proc: cmd.Process}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "RELAY "); ok {
				addr <- a
			}
			if g, ok := strings.CutPrefix(sc.Text(), "GOROUTINES "); ok {
				n, _ := strconv.ParseInt(g, 10, 64)
				r.goroutines.Store(n)
			}
		}
	}()
	select {
	case a := <-addr:
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			t.Fatal(err)
		}
		info, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			t.Fatal(err)
		}
		r.info = *info
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("the relay process did not start")
	}
	return nil
}

// rss returns a process's resident set, from /proc.
func rss(t *testing.T, p *os.Process) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// flooder attacks one node: connection attempts, half of them raw TCP
// that sends garbage instead of a handshake, half of them libp2p
// connections from a pool of identities that open floodStreams streams on
// every protocol of ours (the broadcast's tree, announcements, both replay
// versions, the broadcast's chat state) and send garbage on each — random
// bytes, a frame length of 4 MiB followed by a trickle, a length that
// never ends —, hold them floodHold, then hang up.
type flooder struct {
	target  peer.AddrInfo
	tcpAddr string
	protos  []protocol.ID
	hosts   []host.Host

	attempts, done, tcpDone, libp2pOK, streams atomic.Int64
}

func newFlooder(t *testing.T, target peer.AddrInfo, broadcast string, identities int) *flooder {
	t.Helper()
	var tcpAddr string
	for _, a := range target.Addrs {
		if na, err := manet.ToNetAddr(a); err == nil && strings.HasPrefix(a.String(), "/ip4/") {
			tcpAddr = na.String()
			break
		}
	}
	f := &flooder{target: target, tcpAddr: tcpAddr, protos: []protocol.ID{
		protocol.ID(string(p2p.ProtocolID) + "/" + broadcast), announce.ProtocolID,
		swarm.ProtocolID, swarm.ProtocolV11, protocol.ID("/peerscope/chat-state/1.0.0/" + broadcast)}}
	for range identities {
		h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New),
			libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		f.hosts = append(f.hosts, h)
	}
	return f
}

// idle connects n more identities to the target, to stay.
func (f *flooder) idle(t *testing.T, n int) []host.Host {
	t.Helper()
	var hs []host.Host
	for range n {
		h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New),
			libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		if err := h.Connect(t.Context(), f.target); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

// run makes n attempts with the pool's identities working at once.
func (f *flooder) run(ctx context.Context, n int64) {
	f.attempts.Store(n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for _, h := range f.hosts {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > n || ctx.Err() != nil {
					return
				}
				if i%2 == 0 {
					f.garbageTCP()
				} else {
					f.garbageStreams(ctx, h, i)
				}
				f.done.Add(1)
			}
		})
	}
	wg.Wait()
}

func (f *flooder) garbageTCP() {
	c, err := net.DialTimeout("tcp", f.tcpAddr, 5*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	junk := make([]byte, 512)
	_, _ = rand.Read(junk)
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Write(junk)
	_, _ = c.Read(junk[:1])
	f.tcpDone.Add(1)
}

func (f *flooder) garbageStreams(ctx context.Context, h host.Host, i int64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second+*floodHold)
	defer cancel()
	if err := h.Connect(ctx, f.target); err != nil {
		return
	}
	f.libp2pOK.Add(1)
	defer func() { _ = h.Network().ClosePeer(f.target.ID) }()
	for k := range *floodStreams * len(f.protos) {
		proto := f.protos[k%len(f.protos)]
		s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "flood"), f.target.ID, proto)
		if err != nil {
			continue
		}
		f.streams.Add(1)
		var junk []byte
		switch (int(i) + k) % 3 {
		case 0:
			junk = make([]byte, 300)
			_, _ = rand.Read(junk)
		case 1:
			junk = append(binary.AppendUvarint(nil, 4<<20), make([]byte, 1024)...)
		case 2:
			junk = []byte{0x80, 0x80}
		}
		_, _ = s.Write(junk)
	}
	// Hold the streams a while, so that they pile up at the target.
	select {
	case <-time.After(*floodHold):
	case <-ctx.Done():
	}
}

// What each libp2p attempt of the flood does: streams on each protocol
// (more than any per-peer cap of ours), held this long.
var (
	floodStreams = flag.Int("flood.streams", 8, "streams on each protocol per libp2p attempt of TestFlood's attacker")
	floodHold    = flag.Duration("flood.hold", 250*time.Millisecond, "how long TestFlood's attacker holds its streams")
)

// TestFlood: a relay node with two children, in a process of its own,
// under a flood of connection attempts and garbage on every protocol of
// ours (flooder) keeps delivering the video to its children: each gets
// every chunk the broadcaster made while the flood went on (continuity
// 1.0). The relay's RSS is reported before, during (the highest sampled)
// and after the flood.
func TestFlood(t *testing.T) {
	e2e(t)
	root := newNode(t, node.Config{Slots: 1})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "flooded", Source: gated{gate, sampleSource(t, ingest.WithLoop())}})
	if err != nil {
		t.Fatal(err)
	}
	rel := relayProcess(t, b.Link())
	proc, relay := rel.proc, rel.info
	waitFor(t, 30*time.Second, "the relay in the broadcaster's slot", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := b.Status(ctx)
		return err == nil && len(st.Children) == 1 && st.Children[0] == relay.ID
	})
	var kids []*node.Broadcast
	for range 2 {
		w, err := newNode(t, node.Config{Slots: node.NoRelay}).Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "a child under the relay", func() bool {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			st, err := w.Status(ctx)
			return err == nil && st.Depth == 2 && st.Parent == relay.ID
		})
		kids = append(kids, w)
	}
	close(gate)
	waitFor(t, 30*time.Second, "the video at the children", func() bool { return received(t, kids[0]) > 10 && received(t, kids[1]) > 10 })
	rssBefore, gBefore := rss(t, proc), rel.goroutines.Load()

	f := newFlooder(t, relay, b.ID(), 64)
	start := time.Now()
	idle := f.idle(t, *floodIdle)
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		f.run(t.Context(), int64(*floodAttempts))
		select {
		case <-time.After(time.Until(start.Add(*floodMin))):
		case <-t.Context().Done():
		}
	}()
	var rssMax, gMax int64
	var latMax time.Duration
	tick := time.NewTicker(250 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case <-flooded:
			waiting = false
		case <-tick.C:
			rssMax, gMax = max(rssMax, rss(t, proc)), max(gMax, rel.goroutines.Load())
			for _, k := range kids {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				if st, err := k.Status(ctx); err == nil {
					latMax = max(latMax, st.Latency)
				}
				cancel()
			}
		}
	}
	tick.Stop()
	took := time.Since(start)
	for _, h := range idle {
		_ = h.Close()
	}
	made := received(t, b) // every chunk the broadcaster made up to the flood's end
	// The children get them all (a chunk takes well under a second down
	// two hops; the wait is generous).
	for i, k := range kids {
		waitFor(t, 20*time.Second, fmt.Sprintf("child %d to hold every chunk made during the flood", i+1), func() bool { return received(t, k) >= made })
	}
	time.Sleep(5 * time.Second) // not an assertion: the RSS after the flood has settled
	rssAfter, gAfter := rss(t, proc), rel.goroutines.Load()
	for i, k := range kids {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		st, err := k.Status(ctx)
		cancel()
		if err != nil || st.Parent != relay.ID {
			t.Errorf("child %d left the relay (parent %s, %v)", i+1, st.Parent, err)
		}
	}
	t.Logf("flood: %d connection attempts in %v (%.0f/s): %d raw TCP with garbage, %d libp2p connections with %d garbage streams",
		f.done.Load(), took.Round(time.Millisecond), float64(f.done.Load())/took.Seconds(), f.tcpDone.Load(), f.libp2pOK.Load(), f.streams.Load())
	t.Logf("children: every one of the %d chunks made (continuity 1.0); the newest chunk's latency at most %v during the flood", made, latMax.Round(time.Millisecond))
	t.Logf("relay RSS: before %.1f MB, during %.1f MB (highest sampled), after %.1f MB; goroutines %d, %d, %d",
		float64(rssBefore)/1e6, float64(rssMax)/1e6, float64(rssAfter)/1e6, gBefore, gMax, gAfter)
	if f.libp2pOK.Load() == 0 || f.streams.Load() == 0 {
		t.Error("the flood made no libp2p connection or stream: it tested nothing")
	}
}
