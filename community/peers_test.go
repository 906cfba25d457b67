package community

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
)

func TestParseBootstrapPeers(t *testing.T) {
	const id = "12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE"
	got, err := ParseBootstrapPeers([]string{
		"/ip4/198.18.0.1/tcp/4001/p2p/" + id,
		" /ip4/198.18.0.1/udp/4001/quic-v1/p2p/" + id + " ",
		"",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID.String() != id || len(got[0].Addrs) != 2 {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"/ip4/198.18.0.1/tcp/4001", "/p2p/" + id, "nonsense", "/ip4/1.2.3.4/tcp/1/p2p/notanid"} {
		if _, err := ParseBootstrapPeers([]string{bad}); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", bad, err)
		}
	}
}

// FuzzParseBootstrapPeers: whatever it is given, ParseBootstrapPeers
// returns peers with addresses, or ErrConfig.
func FuzzParseBootstrapPeers(f *testing.F) {
	f.Add("/ip4/198.18.0.1/tcp/4001/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE")
	f.Add("/ip4/198.18.0.1/udp/4001/quic-v1/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE,/dns4/boot.example/tcp/4001/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE")
	f.Add("/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE")
	f.Add("/ip4/1.2.3.4/tcp/1")
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := ParseBootstrapPeers(strings.Split(s, ","))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("%q: %v is not ErrConfig", s, err)
			}
			return
		}
		for _, p := range peers {
			if p.ID == "" || len(p.Addrs) == 0 {
				t.Fatalf("%q: peer %v without ID or address", s, p)
			}
		}
	})
}

// TestPeersFromPinnedInfo: a bootstrap given with its pin (URL#pin=…)
// gives its libp2p side like any other; a wrong pin gives nothing.
func TestPeersFromPinnedInfo(t *testing.T) {
	const id = "12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{PeerInfo: func() (string, []string) { return id, []string{"/ip4/198.18.0.1/tcp/4001"} }}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	log := slog.New(slog.DiscardHandler)
	got := PeersFromInfo(ctx, []string{svc.URL() + "#pin=" + svc.Keys.ID()}, log)
	if len(got) != 1 || got[0].ID.String() != id {
		t.Fatalf("pinned: %v", got)
	}
	if got := PeersFromInfo(ctx, []string{svc.URL() + "#pin=" + strings.Repeat("0", 32)}, log); len(got) != 0 {
		t.Fatalf("a wrong pin gave %v", got)
	}
}
