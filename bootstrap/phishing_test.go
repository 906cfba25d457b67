package bootstrap_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestPhishedSignIn runs the phishing flow end to end against the X
// stand-in: the attacker's node starts a sign-in (asking for the tweet
// scope) and sends the victim the link, a genuine X page; the victim
// approves as herself. The attacker's node must come out of it with
// nothing: no attestation, no session, no way to post as her, and the
// page the victim lands on must give the attacker nothing either.
func TestPhishedSignIn(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		attacker := e.node(66)
		start, err := attacker.c.TwitterStart(ctx, "", api.ScopeTweet, api.ScopeFollows)
		if err != nil {
			t.Fatal(err)
		}
		// The victim, alice (100), opens the link in her browser and approves.
		resp, page := get(t, browser(t), start.AuthorizeURL+"&login=100")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the victim's sign-in: %d %s", resp.StatusCode, page)
		}
		// Whatever the page shows is the victim's to read, not the attacker's:
		// the attacker's node has no attestation, no session, no feed.
		if got, err := attacker.c.Attestation(ctx); err == nil {
			t.Fatalf("the attacker's node holds the victim's attestation: %s (%s)", got.Account.Handle, got.Account.Key())
		}
		if _, err := attacker.c.Following(ctx); err == nil {
			t.Fatal("the attacker's node has a session as the victim")
		}
		id := attacker.broadcastID("evil")
		a := announcement(id, "buy my coin", e.clock.Now(), 1)
		a.Tweet = true
		res, err := attacker.c.Announce(ctx, id, a)
		if err != nil {
			t.Fatal(err)
		}
		if res.Tweeted != "" || len(e.x.Tweets()) != 0 || res.Listing.Who != nil {
			t.Fatalf("the attacker's broadcast went out as the victim: %+v, tweets %+v", res.Listing.Who, e.x.Tweets())
		}
		for _, table := range []string{"sessions", "attestations"} {
			if n := e.count(table); n != 0 {
				t.Fatalf("%d rows in %s after a sign-in nobody redeemed", n, table)
			}
		}
		// Guessing the code the victim was shown gets the attacker nowhere.
		for _, guess := range []string{"AAAA-AAAA", "2345-6789", strings.Repeat("B", 8)} {
			if _, err := attacker.c.TwitterFinish(ctx, guess); err == nil {
				t.Fatalf("the guess %s redeemed the victim's sign-in", guess)
			}
		}
		// The victim's own node, handed the code by her browser (or typed in
		// by her), cannot redeem it either: it was started by another node.
		// The page told her so, and that nothing was signed.
		if !strings.Contains(page, "Nothing has been signed") || !strings.Contains(page, attacker.id.String()[len(attacker.id.String())-6:]) {
			t.Fatalf("the page does not warn the victim: %s", page)
		}
		code := pageCode(t, page)
		victim := e.node(1)
		if _, err := victim.c.TwitterFinish(ctx, code); err == nil {
			t.Fatal("another node redeemed the sign-in")
		}
		if _, err := attacker.c.Attestation(ctx); err == nil {
			t.Fatal("the attacker's node got an attestation in the end")
		}
	})
}

// pageCode reads the one-time code a callback page shows.
func pageCode(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `id="code">`)
	code, _, ok2 := strings.Cut(rest, "<")
	if !ok || !ok2 || code == "" {
		t.Fatalf("no code on the page: %s", page)
	}
	return code
}

var _ = url.Parse
