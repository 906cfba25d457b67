//go:build !light

package main

import (
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestMain stops the PostgreSQL test cluster, if a test started one; in a
// child a test started (childArgs), it runs the child's command instead.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childArgs); spec != "" {
		os.Exit(runChild(spec))
	}
	pinLibp2pLogs()
	pgtest.Main(m)
}

// pinLibp2pLogs gives go-libp2p's loggers the process's standard error
// once, now. Left alone, each of them reads the os.Stderr variable the
// first time it logs, from whatever goroutine logs first (the WebRTC
// listener's, in a node the demo started), while capture swaps that
// variable on the test's goroutine: the race detector failed TestDemoShort
// on it in a -race run. The level is the one GOLOG_LOG_LEVEL gives the
// loggers that no system-specific level names (error when unset).
func pinLibp2pLogs() {
	level := gologshim.ConfigFromEnv().LevelForSystem("")
	gologshim.SetDefaultHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// TestBootstrapOnPostgres runs 'peerscope bootstrap --db postgres://…'
// end to end: a node signs up by phone (the code printed by the console
// sender) and lists a broadcast; the bootstrap is stopped and started
// again on the same database, and the listing and the node's session are
// still there; the operator's --revoke-account with --db ends that
// session, and --rotate-key with --db rotates the keys it serves (the
// database's, not --data's).
func TestBootstrapOnPostgres(t *testing.T) {
	db := pgtest.DB(t)
	dir := t.TempDir()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	me, _ := peer.IDFromPrivateKey(priv)
	id := me.String() + ".pg1"
	codeRe := regexp.MustCompile(`Phone sign-up code for \S+: ([0-9]{6})\b`)

	// serve runs the bootstrap until step returns, and then stops it.
	serve := func(step func(ctx context.Context, c *api.Client) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out, err := capture(t, func() error {
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, []string{"bootstrap", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--data", dir, "--db", db})
			}()
			var base string
			if err := waitOutput(30*time.Second, errc, func(s string) bool {
				_, rest, ok := strings.Cut(s, "Directory and HTTP API (--bootstrap): ")
				base, _, _ = strings.Cut(rest, "\n")
				return ok && strings.Contains(rest, "\n")
			}); err != nil {
				return err
			}
			if err := step(ctx, &api.Client{Base: base, Key: priv}); err != nil {
				cancel()
				<-errc
				return err
			}
			cancel()
			return <-errc
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}

	serve(func(ctx context.Context, c *api.Client) error {
		if err := c.PhoneStart(ctx, "+15550100"); err != nil {
			return err
		}
		var code string
		if err := waitOutput(10*time.Second, nil, func(s string) bool {
			m := codeRe.FindStringSubmatch(s)
			if m != nil {
				code = m[1]
			}
			return m != nil
		}); err != nil {
			return err
		}
		if _, err := c.PhoneVerify(ctx, "+15550100", code); err != nil {
			return err
		}
		now := time.Now()
		u := api.ListingUpdate{Title: "On PostgreSQL", Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + me.String(),
			Started: now, Version: uint64(now.UnixNano())}
		_, err := c.Announce(ctx, id, u)
		return err
	})
	serve(func(ctx context.Context, c *api.Client) error {
		list, err := c.List(ctx, api.Query{Text: "postgresql"}) // ILIKE: case-blind, as on SQLite
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].ID != id || list[0].Who == nil {
			t.Errorf("after a restart, the directory lists %+v", list)
		}
		if _, err := c.Following(ctx); err != nil {
			t.Errorf("after a restart, the session: %v", err)
		}
		return nil
	})
	out, err := capture(t, func() error {
		return run(t.Context(), []string{"bootstrap", "--data", dir, "--db", db, "--revoke-peer", me.String()})
	})
	if err != nil || !strings.Contains(out, "Revoked") {
		t.Fatalf("--revoke-peer with --db: %v\n%s", err, out)
	}
	serve(func(ctx context.Context, c *api.Client) error {
		if _, err := c.Following(ctx); err == nil {
			t.Error("a revoked peer's session still answers")
		}
		return nil
	})

	// --rotate-key with --db rotates the database's keys, whatever --data
	// holds (here, nothing): the bootstrap serves the new key.
	out, err = capture(t, func() error {
		return run(t.Context(), []string{"bootstrap", "--data", t.TempDir(), "--db", db, "--rotate-key"})
	})
	m := regexp.MustCompile(`New attestation key ([0-9a-f]{64}); 1 retired`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("--rotate-key with --db: %v\n%s", err, out)
	}
	serve(func(ctx context.Context, c *api.Client) error {
		ks, err := c.Trust(ctx)
		if err != nil {
			return err
		}
		if len(ks.Keys) != 2 || hex.EncodeToString(ks.Keys[0].Public) != m[1] {
			t.Errorf("after --rotate-key --db the bootstrap publishes %+v, not %s first", ks.Keys, m[1])
		}
		return nil
	})
}
