package bootstrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/peerscope/peerscope/internal/testutil"
)

var loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

func newBootstrap(t *testing.T, cfg HostConfig) *Host {
	t.Helper()
	if cfg.Listen == nil {
		cfg.Listen = loopback
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := NewHost(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newPeer(t *testing.T) host.Host { return testutil.Host(t) }

func info(b *Host) peer.AddrInfo { return peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()} }

func TestHostKeepsItsIdentity(t *testing.T) {
	dir := t.TempDir()
	b := newBootstrap(t, HostConfig{DataDir: dir})
	id := b.ID()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
	b2 := newBootstrap(t, HostConfig{DataDir: dir})
	if b2.ID() != id {
		t.Fatalf("restarted with peer ID %s, was %s", b2.ID(), id)
	}
	for _, a := range b2.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
			t.Errorf("address %s has no /p2p/", a)
		}
	}
}

func TestHostConfigErrors(t *testing.T) {
	for name, cfg := range map[string]HostConfig{
		"peer without ID":  {Peers: []string{"/ip4/127.0.0.1/tcp/4001"}},
		"peer garbage":     {Peers: []string{"nonsense"}},
		"negative data":    {Relay: RelayConfig{CircuitData: -1}},
		"short duration":   {Relay: RelayConfig{CircuitDuration: time.Millisecond}},
		"huge buffer":      {Relay: RelayConfig{Buffer: 64 << 20}},
		"too few peers":    {MaxPeers: 3},
		"bad listen addrs": {Listen: []string{"/ip4/127.0.0.1/tcp/notaport"}},
	} {
		if _, err := NewHost(context.Background(), cfg); !errors.Is(err, ErrHostConfig) {
			t.Errorf("%s: %v, want ErrHostConfig", name, err)
		}
	}
}

// TestHostServices checks that a peer finds, on the bootstrap, what a node
// behind NAT needs: AutoNAT v1 and v2, the relay's hop protocol, and the
// Peerscope DHT (and not IPFS's).
func TestHostServices(t *testing.T) {
	b := newBootstrap(t, HostConfig{})
	p := newPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Connect(ctx, info(b)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/libp2p/autonat/1.0.0",
		"/libp2p/autonat/2/dial-request",
		"/libp2p/circuit/relay/0.2.0/hop",
		"/peerscope/kad/1.0.0",
	}
	var got []string
	for ctx.Err() == nil { // identify runs after the connection is up
		protos, err := p.Peerstore().GetProtocols(b.ID())
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, pr := range protos {
			got = append(got, string(pr))
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return slices.Contains(got, w) })
		if len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("bootstrap lacks %v; it speaks %v", missing, got)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if slices.Contains(got, "/ipfs/kad/1.0.0") {
		t.Error("the bootstrap serves IPFS's DHT")
	}

	// A node's DHT client with the Peerscope prefix takes the bootstrap
	// into its routing table.
	d, err := dht.New(p, dht.Mode(dht.ModeClient), dht.ProtocolPrefix(DHTPrefix), dht.DisableValues())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for d.RoutingTable().Find(b.ID()) == "" {
		select {
		case <-ctx.Done():
			t.Fatal("the bootstrap never entered the DHT client's routing table")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// relayed sets up a peer with a reservation on b and another peer connected
// to it through the relay, and returns the stream that the second opened.
func relayed(t *testing.T, ctx context.Context, b *Host) (network.Stream, *client.Reservation, <-chan []byte) {
	t.Helper()
	behind, other := newPeer(t), newPeer(t)
	if err := behind.Connect(ctx, info(b)); err != nil {
		t.Fatal(err)
	}
	rsvp, err := client.Reserve(ctx, behind, info(b))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	behind.SetStreamHandler("/test/sink", func(s network.Stream) {
		defer s.Close()
		b, _ := io.ReadAll(s)
		got <- b
	})
	circuit := ma.StringCast("/p2p/" + b.ID().String() + "/p2p-circuit")
	var addrs []ma.Multiaddr
	for _, a := range b.Host().Addrs() {
		addrs = append(addrs, a.Encapsulate(circuit))
	}
	if err := other.Connect(ctx, peer.AddrInfo{ID: behind.ID(), Addrs: addrs}); err != nil {
		t.Fatal(err)
	}
	s, err := other.NewStream(network.WithAllowLimitedConn(ctx, "test"), behind.ID(), "/test/sink")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Conn().Stat().Limited {
		t.Fatal("the relayed connection is not marked limited")
	}
	return s, rsvp, got
}

// TestRelayCarriesVideo sends 2 MiB through a circuit: sixteen times what
// libp2p's default relay allows, about 7 s of a 2.5 Mb/s stream.
func TestRelayCarriesVideo(t *testing.T) {
	b := newBootstrap(t, HostConfig{Relay: RelayConfig{Open: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, rsvp, got := relayed(t, ctx, b)
	if rsvp.LimitData != uint64(DefaultRelayData) || rsvp.LimitDuration != DefaultRelayDuration {
		t.Errorf("reservation limits %d B, %s; want %d B, %s", rsvp.LimitData, rsvp.LimitDuration, DefaultRelayData, DefaultRelayDuration)
	}
	payload := make([]byte, 2<<20)
	_, _ = rand.Read(payload)
	if _, err := s.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, payload) {
			t.Fatalf("received %d bytes, not the %d sent", len(b), len(payload))
		}
	case <-ctx.Done():
		t.Fatal("nothing arrived through the relay")
	}
	st := b.RelayStats()
	if st.Reservations != 1 || st.CircuitsOpened != 1 || st.Bytes < int64(len(payload)) {
		t.Errorf("relay stats %+v", st)
	}
}

// TestRelayEnforcesItsLimit configures a small data limit and checks that
// the relay cuts the circuit there: the limits are the relay's, not only
// advertised.
func TestRelayEnforcesItsLimit(t *testing.T) {
	const limit = 256 << 10
	b := newBootstrap(t, HostConfig{Relay: RelayConfig{CircuitData: limit, Open: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, rsvp, got := relayed(t, ctx, b)
	if rsvp.LimitData != limit {
		t.Errorf("reservation data limit %d, want %d", rsvp.LimitData, limit)
	}
	chunk := make([]byte, 32<<10)
	sent := 0
	var err error
	for sent < 8*limit {
		var n int
		n, err = s.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	_ = s.CloseWrite()
	if err == nil {
		select {
		case b := <-got:
			if len(b) >= 8*limit {
				t.Fatalf("%d bytes crossed a relay limited to %d", len(b), limit)
			}
		case <-ctx.Done():
			t.Fatal("the circuit neither failed nor delivered")
		}
	}
}

// BenchmarkRelayCircuit measures what one relayed circuit carries on this
// machine (all three hosts in this process, on loopback TCP): the figure
// that sizes a bootstrap's relay (docs/BENCHMARKS.md).
func BenchmarkRelayCircuit(b *testing.B) {
	bs, err := NewHost(context.Background(), HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Relay: RelayConfig{Open: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	mk := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	behind, other := mk(), mk()
	defer behind.Close()
	defer other.Close()
	ctx := context.Background()
	if err := behind.Connect(ctx, info(bs)); err != nil {
		b.Fatal(err)
	}
	if _, err := client.Reserve(ctx, behind, info(bs)); err != nil {
		b.Fatal(err)
	}
	done := make(chan int64, 1)
	behind.SetStreamHandler("/bench/sink", func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		s.Close()
		done <- n
	})
	circuit := bs.Host().Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + bs.ID().String() + "/p2p-circuit"))
	if err := other.Connect(ctx, peer.AddrInfo{ID: behind.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		b.Fatal(err)
	}
	s, err := other.NewStream(network.WithAllowLimitedConn(ctx, "bench"), behind.ID(), "/bench/sink")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = s.CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("%d bytes arrived of %d", n, b.N*len(buf))
	}
}
