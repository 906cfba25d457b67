package testutil

import (
	"bytes"
	"crypto/ed25519"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/peerscope/peerscope/internal/p2plimit"
)

// Host returns a libp2p host on loopback TCP, closed when the test ends.
func Host(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TCPHost returns a bare host on loopback TCP for tests that run many
// hosts in one process: Noise over TCP only, no resource limits (each host
// would size its limits as if it had the machine alone), no relay, no
// metrics; opts come after (a fixed identity, say). It is closed when the
// test ends.
func TCPHost(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// SeededPeer returns the libp2p identity (ed25519) made from a seed byte,
// the same in every run. Tests name their peers with it in package-level
// tables, so it panics rather than fail a test.
func SeededPeer(seed byte) (crypto.PrivKey, peer.ID) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return priv, id
}

// Broadcaster returns a fixed broadcaster (the same key in every run, so
// that fuzz seeds signed with it stay valid): its key, its public key and
// a broadcast ID of its.
func Broadcaster(t testing.TB) (crypto.PrivKey, ed25519.PublicKey, string) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := k.GetPublic().Raw()
	return k, ed25519.PublicKey(raw), pid.String() + ".abcdefgh"
}

// LimitedHost returns a host on loopback TCP under the resource manager a
// node runs (internal/p2plimit: our protocols' per-peer stream and memory
// caps), closed when the test ends.
func LimitedHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics(), p2plimit.Option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// HangingStreams opens n streams from one host to a peer on a protocol,
// writes a byte on each (so the handler runs) and never sends the rest:
// what a flooder does. It returns the count of them the peer has reset
// (or closed) so far, which grows as it does.
func HangingStreams(t testing.TB, from host.Host, to peer.AddrInfo, proto protocol.ID, n int, first byte) *atomic.Int32 {
	t.Helper()
	if err := from.Connect(t.Context(), to); err != nil {
		t.Fatal(err)
	}
	var ended atomic.Int32
	for range n {
		s, err := from.NewStream(t.Context(), to.ID, proto)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte{first}); err != nil {
			t.Fatal(err)
		}
		go func() {
			var b [1]byte
			for {
				if _, err := s.Read(b[:]); err != nil {
					ended.Add(1)
					return
				}
			}
		}()
		t.Cleanup(func() { _ = s.Reset() })
	}
	return &ended
}

// ServiceStreams returns how many inbound streams a host's resource
// manager counts under a service.
func ServiceStreams(h host.Host, service string) int {
	var n int
	_ = h.Network().ResourceManager().ViewService(service, func(s network.ServiceScope) error {
		n = s.Stat().NumStreamsInbound
		return nil
	})
	return n
}
