package p2p_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// newRelayingHost starts a loopback host that can dial and accept relayed
// connections (newHost disables them).
func newRelayingHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// meshStreams counts h's outbound tree streams to p on relayed and on
// direct connections.
func meshStreams(h host.Host, p peer.ID) (relayed, direct int) {
	for _, c := range h.Network().ConnsToPeer(p) {
		_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
		for _, s := range c.GetStreams() {
			if s.Protocol() != p2p.ProtocolID || s.Stat().Direction != network.DirOutbound {
				continue
			}
			if err == nil {
				relayed++
			} else {
				direct++
			}
		}
	}
	return relayed, direct
}

// TestTreeAcrossRelay joins a viewer to a broadcaster it can reach only
// through a circuit relay with limits (a "limited" connection in libp2p),
// checks that chunks flow, then gives them a direct connection (what hole
// punching does) and checks that the tree's streams move to it without a
// chunk lost.
func TestTreeAcrossRelay(t *testing.T) {
	rl := newRelayingHost(t)
	res := relay.DefaultResources()
	res.Limit = &relay.RelayLimit{Duration: time.Hour, Data: 1 << 30}
	r, err := relay.New(rl, relay.WithResources(res))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	relayInfo := peer.AddrInfo{ID: rl.ID(), Addrs: rl.Addrs()}

	rh, vh := newRelayingHost(t), newRelayingHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rh.Connect(ctx, relayInfo); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, rh, relayInfo); err != nil {
		t.Fatal(err)
	}
	// The viewer knows the broadcaster only by its relayed address.
	circuit := rl.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + rl.ID().String() + "/p2p-circuit"))
	rootInfo := mesh.PeerInfo{ID: p2p.MeshID(rh.ID()), Addrs: []string{circuit.String()}}

	root := startPeer(t, rh, testConfig(rootInfo, 2))
	viewer := startPeer(t, vh, testConfig(rootInfo, 2))
	waitFor(t, 20*time.Second, "the viewer attached through the relay", func() bool {
		return viewer.status(t).State == "attached"
	})
	if path := rh.Network().ConnsToPeer(vh.ID()); len(path) != 1 || !path[0].Stat().Limited {
		t.Fatalf("want one limited (relayed) connection, have %d", len(path))
	}
	pub := publish(t, root, 20*time.Millisecond)
	waitFor(t, 20*time.Second, "chunks through the relay", func() bool { return viewer.count() >= 20 })
	if rel, dir := meshStreams(rh, vh.ID()); rel == 0 || dir != 0 {
		t.Fatalf("root's tree streams: %d relayed, %d direct; want them relayed", rel, dir)
	}

	// A direct connection appears, as after a hole punch.
	dctx := network.WithForceDirectDial(ctx, "test")
	if err := vh.Connect(dctx, peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the root's stream to move off the relay", func() bool {
		rel, dir := meshStreams(rh, vh.ID())
		return rel == 0 && dir == 1
	})
	n := pub.published()
	waitFor(t, 20*time.Second, "chunks over the direct connection", func() bool { return viewer.count() >= int(n)+20 })
	last := pub.halt()
	waitFor(t, 20*time.Second, "every chunk at the viewer", func() bool { return viewer.count() == int(last) })
	for seq := range last {
		if !viewer.has(seq) {
			t.Fatalf("chunk %d lost", seq)
		}
	}
}

// TestAttachCarriesCurrentAddrs: a node's Attach tells its parent the
// host's addresses of the moment, not those it had when the node started
// (a relay reservation or a NAT mapping comes later).
func TestAttachCarriesCurrentAddrs(t *testing.T) {
	rh, vh := newHost(t), newHost(t)
	rootInfo := p2p.Info(rh)
	// The viewer starts before the root's tree does: its Attach attempts
	// fail until the root starts, after the viewer's host has a new
	// address.
	viewer := startPeer(t, vh, testConfig(rootInfo, 2))
	var mu sync.Mutex
	var sent [][]string
	viewer.n.SetTamper(func(to mesh.PeerID, m *mesh.Message) *mesh.Message {
		if m.Type == mesh.MsgAttach {
			mu.Lock()
			sent = append(sent, append([]string(nil), m.Addrs...))
			mu.Unlock()
		}
		return m
	})
	started := len(viewer.n.Info().Addrs)
	if err := vh.Network().Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the new listen address", func() bool { return len(p2p.Info(vh).Addrs) > started })
	now := len(p2p.Info(vh).Addrs)
	mu.Lock()
	sent = nil // what was sent before the address existed
	mu.Unlock()
	startPeer(t, rh, testConfig(rootInfo, 2))
	waitFor(t, 20*time.Second, "the viewer attached", func() bool { return viewer.status(t).State == "attached" })
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("no Attach seen after the address was added")
	}
	// The last is the Attach the root took.
	if last := sent[len(sent)-1]; len(last) != now {
		t.Fatalf("the Attach carried %d addresses, the host has %d (the node started with %d)", len(last), now, started)
	}
}
