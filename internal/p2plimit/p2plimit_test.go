package p2plimit_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/testutil"
)

const proto = "/peerscope/test-limits/1"

// TestPeerStreamCap: a peer that opens twenty streams on a protocol of the
// info service gets four held; the rest are reset by the resource
// manager's service scope, and a second peer still gets its four.
func TestPeerStreamCap(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics(), p2plimit.Option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	var held, refused atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h.SetStreamHandler(proto, func(s network.Stream) {
		if err := p2plimit.Accept(s, p2plimit.ServiceInfo); err != nil {
			refused.Add(1)
			return
		}
		held.Add(1)
		<-release
		_ = s.Reset()
	})
	for i, attacker := range []bool{true, false} {
		c := testutil.TCPHost(t)
		if err := c.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		n := 4
		if attacker {
			n = 20
		}
		for range n {
			s, err := c.NewStream(t.Context(), h.ID(), proto)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = s.Write([]byte{1}) // the protocol is negotiated lazily: write to reach the handler
		}
		want := int32(4 * (i + 1))
		testutil.WaitFor(t, 10*time.Second, "the streams handled", func() bool { return held.Load()+refused.Load() == int32(20+4*i) })
		if held.Load() != want {
			t.Fatalf("after peer %d: %d streams held, %d refused; want %d held", i+1, held.Load(), refused.Load(), want)
		}
	}
}

// TestReserve: frames past the eager size are charged to the stream's
// scope, and one over what the service allows a peer is refused.
func TestReserve(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics(), p2plimit.Option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	results := make(chan [3]error, 1)
	h.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Reset()
		// The reset above must not beat the caller's protocol negotiation
		// (NewStream then fails with "stream reset"): wait for its byte.
		_, _ = s.Read(make([]byte, 1))
		var r [3]error
		r[0] = p2plimit.Accept(s, p2plimit.ServiceInfo)
		rel, err := p2plimit.Reserve(s.Scope(), 512<<10) // within the info service's 1 MiB a peer
		r[1] = err
		if err == nil {
			defer rel()
		}
		_, r[2] = p2plimit.Reserve(s.Scope(), 768<<10) // 1.25 MiB in all: over
		results <- r
	})
	c := testutil.TCPHost(t)
	if err := c.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := c.NewStream(t.Context(), h.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte{1})
	r := <-results
	if r[0] != nil || r[1] != nil || r[2] == nil {
		t.Fatalf("accept %v, a 512 KiB frame %v, another of 768 KiB %v (want nil, nil, an error)", r[0], r[1], r[2])
	}
}
