package bootstrap_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestSpamListings: peer IDs are free. From one address, 50 of them each
// list a live broadcast with no account: only a handful make it into the
// directory, the rest are refused with a clear 429; another network still
// lists; a signed-in broadcaster is held to its account's own cap.
func TestSpamListings(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		listed := 0
		for i := 0; i < 50; i++ {
			n := e.node(byte(100 + i)).from("198.51.100.7")
			id := n.broadcastID("spam")
			_, err := n.c.Announce(ctx, id, announcement(id, fmt.Sprintf("FREE COINS %d", i), e.clock.Now(), 1))
			switch s, code := apiStatus(err); {
			case err == nil:
				listed++
			case s == http.StatusTooManyRequests && code == "rate_limited":
			default:
				t.Fatalf("listing %d: %v", i, err)
			}
		}
		live, err := (&api.Client{Base: e.url}).List(ctx, api.Query{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		if listed > 5 || len(live) != listed {
			t.Fatalf("%d fake live broadcasts listed from one address (%d in the directory)", listed, len(live))
		}
		// An update of a listed one still goes through.
		first := e.node(100).from("198.51.100.7")
		id := first.broadcastID("spam")
		up := announcement(id, "FREE COINS 0", e.clock.Now(), 2)
		up.Viewers = 3
		if _, err := first.c.Announce(ctx, id, up); err != nil {
			t.Fatalf("an update of a listed broadcast: %v", err)
		}
		// Another network lists.
		other := e.node(99).from("203.0.113.9")
		oid := other.broadcastID("honest")
		if _, err := other.c.Announce(ctx, oid, announcement(oid, "my garden", e.clock.Now(), 1)); err != nil {
			t.Fatalf("another network: %v", err)
		}
		// A signed-in account, from the spammer's address: its own cap.
		alice := e.node(1).from("198.51.100.7")
		e.signIn(alice, "100")
		n := 0
		for i := 0; i < 10; i++ {
			aid := alice.broadcastID(fmt.Sprintf("a%d", i))
			if _, err := alice.c.Announce(ctx, aid, announcement(aid, "alice live", e.clock.Now(), 1)); err == nil {
				n++
			}
		}
		if n == 0 || n > 5 {
			t.Fatalf("a signed-in account listed %d at once", n)
		}
	})
}
