package bootstrap_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/testutil"
)

// TestDaemon runs the whole daemon on loopback: once Ready, its API names
// its libp2p host, its stand-in X is mounted, the operator is told what to
// give nodes; it stops when its context ends, leaving no goroutine, and
// keeps its peer ID across a restart on the same data directory.
func TestDaemon(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	cfg := bootstrap.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.Host.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.TwitterStandin = "local"
	run := func() (id string) {
		var out testutil.Buffer
		c := cfg
		c.Out = &out
		d, err := bootstrap.NewDaemon(c)
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
			t.Fatalf("Run: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("not ready in 30 s")
		}
		info, err := (&api.Client{Base: d.URL()}).Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.PeerID != d.ID().String() || len(info.Addrs) == 0 || !strings.HasSuffix(info.Addrs[0], "/p2p/"+info.PeerID) || !info.Twitter {
			t.Fatalf("info %+v, daemon %s", info, d.ID())
		}
		resp, err := http.Get(d.URL() + "/x/i/oauth2/authorize")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Fatal("the stand-in X is not mounted under /x/")
		}
		for _, want := range []string{d.ID().String(), d.Addrs()[0].String(), "Ctrl-C", d.URL(), "local stand-in"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("the operator is not told %q:\n%s", want, out.String())
			}
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("Run after its context ended: %v", err)
		}
		return d.ID().String()
	}
	first := run()
	if second := run(); second != first {
		t.Fatalf("the peer ID changed across a restart: %s, then %s", first, second)
	}
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}

// TestNewDaemonRefuses: a configuration that cannot run is refused before
// anything starts.
func TestNewDaemonRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(*bootstrap.Config)
		want error
	}{
		"few peers":     {func(c *bootstrap.Config) { c.Host.MaxPeers = 5 }, bootstrap.ErrHostConfig},
		"tiny buffer":   {func(c *bootstrap.Config) { c.Host.Relay.Buffer = 10 }, bootstrap.ErrHostConfig},
		"bad peer":      {func(c *bootstrap.Config) { c.Host.Peers = []string{"/ip4/1.2.3.4/tcp/1"} }, bootstrap.ErrHostConfig},
		"tiny body":     {func(c *bootstrap.Config) { c.Server.MaxBody = 100 }, bootstrap.ErrConfig},
		"negative TTL":  {func(c *bootstrap.Config) { c.Server.LiveTTL = -time.Second }, bootstrap.ErrConfig},
		"status period": {func(c *bootstrap.Config) { c.StatusEvery = -time.Second }, bootstrap.ErrConfig},
		"replica beat":  {func(c *bootstrap.Config) { c.ReplicaEvery = time.Minute }, bootstrap.ErrConfig},
	} {
		cfg := bootstrap.DefaultConfig()
		c.edit(&cfg)
		if _, err := bootstrap.NewDaemon(cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}
