package nat

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/testutil"
)

// TestWithoutBootstraps: with no bootstrap, Start does not wait, the
// reachability is what the config says (or unknown), and PathTo tells a
// direct connection from none. The relay cases run against real
// bootstraps in node's tests (TestWatchThroughRelay and the others).
func TestWithoutBootstraps(t *testing.T) {
	h, other := testutil.Host(t), testutil.Host(t)
	start := time.Now()
	tr, err := Start(t.Context(), h, Config{Wait: time.Minute, Relays: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if time.Since(start) > 5*time.Second || tr.Reachability() != network.ReachabilityUnknown || Name(tr.Reachability()) != "unknown" {
		t.Fatalf("waited %v; reachability %v", time.Since(start), tr.Reachability())
	}
	if PathTo(h, other.ID()) != PathNone || len(RelayAddrs(h)) != 0 {
		t.Fatal("a path to a peer never met, or relay addresses without a relay")
	}
	if err := h.Connect(t.Context(), peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if PathTo(h, other.ID()) != PathDirect {
		t.Fatalf("path %q to a peer dialled directly", PathTo(h, other.ID()))
	}
	forced, err := Start(t.Context(), h, Config{Reachability: network.ReachabilityPrivate})
	if err != nil {
		t.Fatal(err)
	}
	forced.Close()
	forced.Close()
	if forced.Reachability() != network.ReachabilityPrivate || Name(network.ReachabilityPublic) != "public" {
		t.Fatalf("reachability %v", forced.Reachability())
	}
	var none *Traversal
	none.Close() // a node that failed before its traversal started closes it too
}
