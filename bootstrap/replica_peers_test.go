package bootstrap_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestReplicasFindEachOther (PostgreSQL): two daemons on one database,
// each with its own data directory and libp2p host on loopback, and
// nothing telling either of the other (no --peer), end up connected, each
// in the other's DHT routing table, and each /api/v1/info lists the
// other's addresses too; the one that stops takes its row away.
func TestReplicasFindEachOther(t *testing.T) {
	db := pgtest.DB(t)
	start := func() (*bootstrap.Daemon, context.CancelFunc, chan error) {
		cfg := bootstrap.DefaultConfig()
		cfg.DataDir, cfg.DB, cfg.HTTP = t.TempDir(), db, "127.0.0.1:0"
		cfg.Host.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.ReplicaEvery = 100 * time.Millisecond
		d, err := bootstrap.NewDaemon(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx) }()
		select {
		case <-d.Ready():
		case err := <-errc:
			t.Fatalf("Run: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("not ready in 30 s")
		}
		t.Cleanup(func() {
			cancel()
			<-errc
		})
		return d, cancel, errc
	}
	a, _, _ := start()
	b, stopB, doneB := start()

	joined := func(x, y *bootstrap.Daemon) bool {
		h := x.Host()
		return h.Host().Network().Connectedness(y.ID()) == network.Connected && h.DHT().RoutingTable().Find(y.ID()) != ""
	}
	listed := func(x, y *bootstrap.Daemon) bool {
		info, err := (&api.Client{Base: x.URL()}).Info(t.Context())
		return err == nil && slices.ContainsFunc(info.Addrs, func(s string) bool { return strings.HasSuffix(s, "/p2p/"+y.ID().String()) })
	}
	waitFor(t, 30*time.Second, "the replicas joined and listed each other", func() bool {
		return joined(a, b) && joined(b, a) && listed(a, b) && listed(b, a)
	})

	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("B's Run: %v", err)
	}
	doneB <- nil // for the cleanup
	waitFor(t, 30*time.Second, "A stopped listing B", func() bool { return !listed(a, b) })
}
