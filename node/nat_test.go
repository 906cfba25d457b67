package node_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/nat"
	"github.com/peerscope/peerscope/node"
)

// TestWatchThroughRelay runs a real bootstrap on loopback and a
// broadcaster that takes itself for one behind NAT: it must reserve a slot
// on the bootstrap's relay, and a viewer that knows it only by its relayed
// address must get the video through the relay (streams on a limited
// connection), with the tree, its status and /metrics saying so. (Real
// NATs, hole punching included, are tested in tests/nat.)
func TestWatchThroughRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	bs, boot := loopbackBootstrap(t)

	root := newNode(t, node.Config{
		BootstrapPeers: []peer.AddrInfo{boot},
		Reachability:   network.ReachabilityPrivate,
		// On loopback no circuit address is ever advertised (see below):
		// waiting for one would only run out NATWait.
		NATWait: -1,
	})
	if root.Reachability() != network.ReachabilityPrivate {
		t.Fatalf("reachability %s", root.Reachability())
	}
	waitFor(t, 30*time.Second, "a reservation on the bootstrap's relay", func() bool {
		return bs.RelayStats().Reservations == 1
	})
	b, err := root.GoLive(ctx, node.LiveConfig{Title: "behind NAT", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}

	// libp2p advertises circuit addresses only through public relay
	// addresses, which loopback is not: the link is written by hand.
	circuit := bs.Host().Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + bs.ID().String() + "/p2p-circuit"))
	link := link.Link{Broadcast: b.Link().Broadcast, Peers: []peer.AddrInfo{{ID: root.ID(), Addrs: []ma.Multiaddr{circuit}}}}
	viewer := newNode(t, node.Config{BootstrapPeers: []peer.AddrInfo{boot}, NATWait: -1})
	w, err := viewer.Watch(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	var st node.TreeStatus
	waitFor(t, 30*time.Second, "video through the relay", func() bool {
		st, err = w.Status(ctx)
		return err == nil && st.Received >= 10
	})
	if st.Parent != root.ID() || st.ParentPath != nat.PathRelayed {
		t.Fatalf("parent %s reached %q; want %s, relayed", st.Parent, st.ParentPath, root.ID())
	}
	if viewer.PathTo(bs.ID()) != nat.PathDirect {
		t.Fatal("the viewer lost its bootstrap")
	}
	if rs := bs.RelayStats(); rs.Circuits < 1 || rs.Bytes < 100_000 {
		t.Fatalf("relay stats %+v: the video did not cross the relay", rs)
	}
	waitFor(t, 10*time.Second, "the broadcaster to count its relayed child", func() bool {
		rst, err := b.Status(ctx)
		return err == nil && rst.RelayedChildren == 1
	})

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(get(t, viewer.HTTPURL()+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	paths := labelled(families, "peerscope_tree_parent_path", b.Link().Broadcast)
	if len(paths) != 1 || !slices.ContainsFunc(paths[0].Label, func(l *dto.LabelPair) bool { return l.GetName() == "path" && l.GetValue() == "relayed" }) {
		t.Fatalf("peerscope_tree_parent_path: %v", paths)
	}
	if reach := families["peerscope_p2p_reachability"]; reach == nil || len(reach.Metric) != 1 {
		t.Fatal("no peerscope_p2p_reachability")
	}

	// Chat crosses the relay too: the viewer's only link to the
	// broadcaster is the circuit (the bootstrap host runs no GossipSub).
	if viewer.PathTo(root.ID()) != nat.PathRelayed {
		t.Fatalf("viewer reaches the broadcaster %q, want relayed only", viewer.PathTo(root.ID()))
	}
	owner := openChat(t, b, root.OwnerToken())
	waitFor(t, 30*time.Second, "the relayed viewer's chat to take a comment", func() bool {
		code, _ := postChat(t, w.URLs().Player+"chat/comment", "", map[string]any{"text": "hello across the relay"})
		return code == http.StatusOK
	})
	waitEvent(t, owner, 20*time.Second, "the comment at the broadcaster", func(e sseEvent) bool {
		return e.Name == "comment" && strings.Contains(e.Data, "hello across the relay")
	})
}

// loopbackBootstrap starts a bootstrap's libp2p host on loopback (its
// relay open: these nodes are not signed in), closed when the test ends,
// and returns it with its address.
func loopbackBootstrap(t *testing.T) (*bootstrap.Host, peer.AddrInfo) {
	t.Helper()
	bs, err := bootstrap.NewHost(t.Context(), bootstrap.HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Relay: bootstrap.RelayConfig{Open: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	return bs, peer.AddrInfo{ID: bs.ID(), Addrs: bs.Host().Addrs()}
}

// TestBootstrapURLGivesPeers: a node given only a bootstrap's HTTP URL
// learns its libp2p side from /api/v1/info and stays connected to it.
func TestBootstrapURLGivesPeers(t *testing.T) {
	bs, _ := loopbackBootstrap(t)
	sctx, stop := context.WithCancel(context.Background())
	svc, err := bootstrap.Open(sctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{PeerInfo: func() (string, []string) {
			var addrs []string
			for _, a := range bs.Addrs() {
				addrs = append(addrs, a.String())
			}
			return bs.ID().String(), addrs
		}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(sctx) }()
	defer func() {
		stop()
		<-done
	}()

	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, NATWait: -1})
	waitFor(t, 20*time.Second, "a connection to the bootstrap's libp2p host", func() bool {
		return n.PathTo(bs.ID()) == nat.PathDirect
	})
	// An unreachable URL costs a warning, not the node.
	lone := newNode(t, node.Config{Bootstrap: []string{"http://127.0.0.1:1"}, NATWait: -1})
	if lone.PathTo(bs.ID()) != nat.PathNone {
		t.Fatal("connected to a bootstrap it was not given")
	}
}

// TestRelayedConnPrunedAfterDirect: once a viewer and its parent, joined
// through the relay, have a direct connection (what hole punching gives),
// the tree moves to it and the circuit is closed, freeing the relay.
func TestRelayedConnPrunedAfterDirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	bs, boot := loopbackBootstrap(t)
	root := newNode(t, node.Config{BootstrapPeers: []peer.AddrInfo{boot}, Reachability: network.ReachabilityPrivate, NATWait: -1})
	waitFor(t, 30*time.Second, "a reservation", func() bool { return bs.RelayStats().Reservations == 1 })
	b, err := root.GoLive(ctx, node.LiveConfig{Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	circuit := bs.Host().Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + bs.ID().String() + "/p2p-circuit"))
	viewer := newNode(t, node.Config{BootstrapPeers: []peer.AddrInfo{boot}, NATWait: -1})
	w, err := viewer.Watch(ctx, link.Link{Broadcast: b.Link().Broadcast, Peers: []peer.AddrInfo{{ID: root.ID(), Addrs: []ma.Multiaddr{circuit}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "video through the relay", func() bool {
		st, err := w.Status(ctx)
		return err == nil && st.Received >= 5 && st.ParentPath == nat.PathRelayed
	})
	if err := viewer.Host().Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: root.ID(), Addrs: root.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the circuit closed", func() bool {
		return bs.RelayStats().Circuits == 0
	})
	n := received(t, w)
	waitFor(t, 30*time.Second, "video over the direct connection", func() bool {
		st, err := w.Status(ctx)
		return err == nil && st.Received >= n+5 && st.ParentPath == nat.PathDirect
	})
	for _, c := range viewer.Host().Network().ConnsToPeer(root.ID()) {
		if c.Stat().Limited {
			t.Fatalf("a relayed connection is left: %s", c.RemoteMultiaddr())
		}
	}
}

// TestBootstrapRestart: a bootstrap that restarts (same identity, same
// address) gets its nodes back, and their relay reservations.
func TestBootstrapRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bs, err := bootstrap.NewHost(ctx, bootstrap.HostConfig{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Relay: bootstrap.RelayConfig{Open: true}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := bs.Host().Addrs()
	boot := peer.AddrInfo{ID: bs.ID(), Addrs: addrs}
	n := newNode(t, node.Config{BootstrapPeers: []peer.AddrInfo{boot}, Reachability: network.ReachabilityPrivate,
		NATWait: -1, BootstrapRedial: 200 * time.Millisecond})
	waitFor(t, 30*time.Second, "a reservation", func() bool { return bs.RelayStats().Reservations == 1 })
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the node to see the bootstrap gone", func() bool { return n.PathTo(boot.ID) == nat.PathNone })
	bs2, err := bootstrap.NewHost(ctx, bootstrap.HostConfig{DataDir: dir, Listen: []string{addrs[0].String()}, Relay: bootstrap.RelayConfig{Open: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer bs2.Close()
	t0 := time.Now()
	waitFor(t, 30*time.Second, "the node back on the bootstrap", func() bool { return n.PathTo(bs2.ID()) == nat.PathDirect })
	t.Logf("back after %s", time.Since(t0))
	// AutoRelay looks at its relays every 5 s (relayMinInterval): 4.9 s
	// here in 58 of 60 runs under -race, 10 s in 2. A clean-clone CI run
	// under -race, the machine loaded three times over, did not see it
	// within 30 s (where those seconds went is not known: the test keeps
	// no libp2p log). A lost reservation still fails here.
	waitFor(t, 90*time.Second, "its reservation back", func() bool { return bs2.RelayStats().Reservations == 1 })
	t.Logf("reserved after %s", time.Since(t0))
}

// TestLocalBootstrapNoWait: a bootstrap on this machine (a local setup)
// cannot say anything about the internet, so a node does not spend
// NATWait waiting for it.
func TestLocalBootstrapNoWait(t *testing.T) {
	_, boot := loopbackBootstrap(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := node.New(ctx, node.Config{NoHTTPS: true, NATWait: time.Minute, BootstrapPeers: []peer.AddrInfo{boot}})
	if err != nil {
		t.Fatalf("New with a loopback bootstrap and a minute's NATWait: %v", err)
	}
	defer n.Close()
	if n.PathTo(boot.ID) != nat.PathDirect {
		t.Fatal("not connected to the bootstrap")
	}
}
