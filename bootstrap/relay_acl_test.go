package bootstrap_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/testutil"
)

// TestRelayForAttestedPeers: by default the daemon's relay reserves a slot
// only for a peer signed in at the bootstrap: an anonymous peer is refused,
// the same peer once it has signed up (with its libp2p key) is served.
func TestRelayForAttestedPeers(t *testing.T) {
	cfg := bootstrap.DefaultConfig()
	cfg.DataDir, cfg.HTTP = t.TempDir(), "127.0.0.1:0"
	cfg.Host.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	sms := &codes{}
	cfg.Server.Phone = sms
	d, err := bootstrap.NewDaemon(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-errc:
		t.Fatal(err)
	}
	defer func() { cancel(); <-errc }()
	h := testutil.Host(t)
	boot := peer.AddrInfo{ID: d.ID(), Addrs: addrsOnly(d)}
	if err := h.Connect(ctx, boot); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = client.Reserve(rctx, h, boot)
	rcancel()
	if err == nil {
		t.Fatal("an anonymous peer got a relay reservation")
	}
	c := &api.Client{Base: d.URL(), Key: h.Peerstore().PrivKey(h.ID())}
	if err := c.PhoneStart(ctx, "+15550123"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PhoneVerify(ctx, "+15550123", sms.code("+15550123")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "a reservation for the signed-in peer", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		_, err := client.Reserve(rctx, h, boot)
		return err == nil
	})
}

func addrsOnly(d *bootstrap.Daemon) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range d.Addrs() {
		ai, _ := peer.AddrInfoFromP2pAddr(a)
		out = append(out, ai.Addrs...)
	}
	return out
}
