package bootstrap_test

import (
	"context"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/internal/pgtest"
	"github.com/peerscope/peerscope/internal/testutil"
)

// TestPrune: ended broadcasts once their replay is no longer listed, live
// ones gone quiet, expired sessions, states, sign-ins, phone codes and
// their windows, attestations and revocations go when the bootstrap
// prunes; what is current stays.
func TestPrune(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, carol := e.node(1), e.node(2), e.node(3)
		e.signIn(alice, "100")
		if err := alice.c.SignOut(ctx, false); err != nil { // a revocation
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		e.signIn(alice, "100")
		if _, err := bob.c.TwitterStart(ctx, ""); err != nil { // a state never used
			t.Fatal(err)
		}
		if err := carol.c.PhoneStart(ctx, "+15550123"); err != nil { // a code never used
			t.Fatal(err)
		}
		ended, quiet := alice.broadcastID("ended"), bob.broadcastID("quiet")
		for _, n := range []struct {
			n  *node
			id string
		}{{alice, ended}, {bob, quiet}} {
			if _, err := n.n.c.Announce(ctx, n.id, announcement(n.id, "x", e.clock.Now(), 1)); err != nil {
				t.Fatal(err)
			}
		}
		end := announcement(ended, "x", e.clock.Now(), 2)
		end.Ended = e.clock.Now()
		if _, err := alice.c.Announce(ctx, ended, end); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.c.PublishReplay(ctx, ended, "bafy"); err != nil {
			t.Fatal(err)
		}
		tables := []string{"broadcasts", "sessions", "oauth_states", "phone_codes", "phone_numbers", "attestations", "revocations"}
		before := map[string]int{}
		for _, tb := range tables {
			if before[tb] = e.count(tb); before[tb] == 0 {
				t.Fatalf("nothing in %s to prune", tb)
			}
		}
		// An hour on: the quiet broadcast, the state, the phone code and its
		// window go; the replay, the session, the attestations stay.
		e.clock.Advance(time.Hour + time.Minute)
		if _, err := e.svc.Server.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		for tb, want := range map[string]int{"broadcasts": 1, "oauth_states": 0, "phone_codes": 0, "phone_numbers": 0,
			"sessions": before["sessions"], "attestations": before["attestations"], "revocations": before["revocations"]} {
			if n := e.count(tb); n != want {
				t.Errorf("after an hour: %d rows in %s, want %d", n, tb, want)
			}
		}
		// 31 days on: everything above has expired.
		e.clock.Advance(31 * 24 * time.Hour)
		if _, err := e.svc.Server.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			if n := e.count(tb); n != 0 {
				t.Errorf("after 31 days: %d rows in %s", n, tb)
			}
		}
	})
}

// TestPruneScheduled: the service prunes on its own every PruneEvery.
func TestPruneScheduled(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.PruneEvery = 20 * time.Millisecond })
		n := e.node(2)
		if _, err := n.c.TwitterStart(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		testutil.WaitFor(t, 20*time.Second, "the expired OAuth state to be pruned", func() bool { return e.count("oauth_states") == 0 })
	})
}
