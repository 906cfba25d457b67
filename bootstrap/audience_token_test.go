package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// token signs a membership token of broadcast id for p, naming roster
// version v, issued now and valid for ttl.
func (e *env) token(caster *node, id string, p peer.ID, v uint64, ttl time.Duration) []byte {
	e.t.Helper()
	now := e.clock.Now()
	t := &audience.Token{Broadcast: id, Peer: p, RosterVersion: v, Issued: now, Expires: now.Add(ttl)}
	if err := t.Sign(caster.key); err != nil {
		e.t.Fatal(err)
	}
	return t.Marshal()
}

func tokensBody(t *testing.T, tokens ...[]byte) []byte {
	t.Helper()
	b, err := json.Marshal(api.TokensPut{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMembershipTokens: the broadcaster leaves a token per device of its
// roster, and each device takes its own: another device, a device the
// roster does not list, a removed device and even the broadcaster are
// refused with 403; tokens not signed by the broadcaster, of another
// broadcast, expired, for a peer the roster does not list, naming a roster
// not stored yet, or twice for one peer refuse the whole request (400),
// storing nothing; only a signed-in broadcaster of a private listing may
// put them; an older token does not replace a newer one; after the
// replay's expiry there is nothing.
func TestMembershipTokens(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, carol, dave := e.node(1), e.node(2), e.node(3), e.node(4)
		e.x.AddUser(xUser("300", "carol"))
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		e.signIn(carol, "300")
		ak, ck := e.deviceKey(alice, 1), e.deviceKey(carol, 3)
		id := bob.broadcastID("priv")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "friends", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		_, err := bob.c.PutTokens(ctx, id, [][]byte{e.token(bob, id, alice.id, 1, time.Hour)})
		mustStatus(t, err, http.StatusNotFound, "not_found") // no roster yet
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 1, member("twitter:100", ak))); err != nil {
			t.Fatal(err)
		}
		aliceTok := e.token(bob, id, alice.id, 1, time.Hour)
		if res, err := bob.c.PutTokens(ctx, id, [][]byte{aliceTok}); err != nil || res.Stored != 1 {
			t.Fatalf("tokens: %+v %v", res, err)
		}
		got, err := alice.c.Token(ctx, id, alice.id.String())
		if err != nil || got.RosterVersion != 1 || !bytes.Equal(got.Token, aliceTok) {
			t.Fatalf("alice's token: %+v %v", got, err)
		}
		if tok, err := audience.ParseToken(got.Token); err != nil || tok.Verify(id, alice.id, e.clock.Now()) != nil {
			t.Fatalf("alice's token does not verify: %v", err)
		}

		// Only the device a token names gets it.
		for _, asker := range []*node{carol, bob} {
			_, err := asker.c.Token(ctx, id, alice.id.String())
			mustStatus(t, err, http.StatusForbidden, "forbidden")
		}
		_, err = carol.c.Token(ctx, id, carol.id.String()) // not in the roster
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		if code, _ := e.raw(nil, http.MethodGet, "/api/v1/broadcasts/"+id+"/tokens/"+alice.id.String(), "", nil); code != http.StatusUnauthorized {
			t.Fatalf("an unsigned GET: %d", code)
		}

		// Refused tokens, and nothing of their request stored.
		forged := append([]byte(nil), aliceTok...)
		forged[len(forged)-1] ^= 1
		carolsID := carol.broadcastID("own")
		if _, err := carol.c.Announce(ctx, carolsID, privateAnnouncement(carolsID, "carol's", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		expired := &audience.Token{Broadcast: id, Peer: alice.id, RosterVersion: 1, Issued: e.clock.Now().Add(-2 * time.Hour), Expires: e.clock.Now().Add(-time.Hour)}
		if err := expired.Sign(bob.key); err != nil {
			t.Fatal(err)
		}
		for name, tokens := range map[string][][]byte{
			"forged":           {forged},
			"another's":        {e.token(carol, carolsID, alice.id, 1, time.Hour)},
			"expired":          {expired.Marshal()},
			"not in roster":    {e.token(bob, id, carol.id, 1, time.Hour)},
			"a newer roster":   {e.token(bob, id, alice.id, 2, time.Hour)},
			"twice":            {e.token(bob, id, alice.id, 1, 2*time.Hour), e.token(bob, id, alice.id, 1, 3*time.Hour)},
			"one bad of two":   {e.token(bob, id, alice.id, 1, 4*time.Hour), []byte("not a token")},
			"none":             {},
			"one past the cap": make([][]byte, api.MaxTokensPerPut+1),
		} {
			_, err := bob.c.PutTokens(ctx, id, tokens)
			if s, _ := apiStatus(err); s != http.StatusBadRequest {
				t.Errorf("%s: %v, want 400", name, err)
			}
		}
		if got, err := alice.c.Token(ctx, id, alice.id.String()); err != nil || !bytes.Equal(got.Token, aliceTok) {
			t.Fatalf("a refused request changed alice's token: %v", err)
		}
		if n := e.count("tokens"); n != 1 {
			t.Fatalf("%d tokens stored", n)
		}
		// Only the broadcaster, signed in, of a private listing.
		_, err = carol.c.PutTokens(ctx, id, [][]byte{aliceTok})
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		daves := dave.broadcastID("anon")
		if _, err := dave.c.Announce(ctx, daves, privateAnnouncement(daves, "anon", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		_, err = dave.c.PutTokens(ctx, daves, [][]byte{e.token(dave, daves, alice.id, 1, time.Hour)})
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		open := bob.broadcastID("open")
		if _, err := bob.c.Announce(ctx, open, announcement(open, "everyone", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		_, err = bob.c.PutTokens(ctx, open, [][]byte{e.token(bob, open, alice.id, 1, time.Hour)})
		mustStatus(t, err, http.StatusConflict, "not_private")

		// Bad requests get a clear 400 (or 415), never a 500.
		for _, tc := range []struct {
			method, path, ctype string
			body                []byte
			want                int
		}{
			{http.MethodPut, "/api/v1/broadcasts/" + id + "/tokens", "text/plain", tokensBody(t, aliceTok), http.StatusUnsupportedMediaType},
			{http.MethodPut, "/api/v1/broadcasts/" + id + "/tokens", "application/json", []byte(`{"tokens":["!!"]}`), http.StatusBadRequest},
			{http.MethodPut, "/api/v1/broadcasts/" + id + "/tokens", "application/json", []byte(`{"tokens":[],"extra":1}`), http.StatusBadRequest},
			{http.MethodPut, "/api/v1/broadcasts/" + id + "/tokens", "application/json", []byte(`{"tokens":null}`), http.StatusBadRequest},
			{http.MethodPut, "/api/v1/broadcasts/" + id + "/tokens", "application/json", []byte(`[`), http.StatusBadRequest},
			{http.MethodPut, "/api/v1/broadcasts/not-an-id/tokens", "application/json", tokensBody(t, aliceTok), http.StatusBadRequest},
			{http.MethodGet, "/api/v1/broadcasts/" + id + "/tokens/not-a-peer", "", nil, http.StatusBadRequest},
			{http.MethodGet, "/api/v1/broadcasts/" + id + "/tokens/" + alice.id.String() + "?since=1", "", nil, http.StatusBadRequest},
		} {
			signer := bob
			if tc.method == http.MethodGet {
				signer = alice
			}
			if code, _ := e.raw(signer, tc.method, tc.path, tc.ctype, tc.body); code != tc.want {
				t.Errorf("%s %s %q: %d, want %d", tc.method, tc.path, clipBody(tc.body), code, tc.want)
			}
		}

		// A newer token replaces alice's; an older one put after it does not.
		newer := e.token(bob, id, alice.id, 1, 2*time.Hour)
		if _, err := bob.c.PutTokens(ctx, id, [][]byte{newer}); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.PutTokens(ctx, id, [][]byte{e.token(bob, id, alice.id, 1, 90*time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if got, err := alice.c.Token(ctx, id, alice.id.String()); err != nil || !bytes.Equal(got.Token, newer) {
			t.Fatalf("alice's token is not the newest: %v", err)
		}

		// Roster 2 adds carol: listed, she still gets only her own token.
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 2, member("twitter:100", ak), member("twitter:300", ck))); err != nil {
			t.Fatal(err)
		}
		_, err = carol.c.Token(ctx, id, carol.id.String())
		mustStatus(t, err, http.StatusNotFound, "not_found") // listed, no token left yet
		carolTok := e.token(bob, id, carol.id, 2, time.Hour)
		if _, err := bob.c.PutTokens(ctx, id, [][]byte{carolTok, e.token(bob, id, alice.id, 2, time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got, err := carol.c.Token(ctx, id, carol.id.String()); err != nil || got.RosterVersion != 2 || !bytes.Equal(got.Token, carolTok) {
			t.Fatalf("carol's token: %+v %v", got, err)
		}
		_, err = carol.c.Token(ctx, id, alice.id.String()) // a member asking for another's
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		// Roster 3 takes alice out: her token is no longer handed to her.
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 3, member("twitter:300", ck))); err != nil {
			t.Fatal(err)
		}
		_, err = alice.c.Token(ctx, id, alice.id.String())
		mustStatus(t, err, http.StatusForbidden, "forbidden")

		// 24 h after the end, nothing.
		end := privateAnnouncement(id, "friends", e.clock.Now(), 2)
		end.Ended = e.clock.Now()
		if _, err := bob.c.Announce(ctx, id, end); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(24 * time.Hour)
		_, err = carol.c.Token(ctx, id, carol.id.String())
		mustStatus(t, err, http.StatusNotFound, "not_found")
	})
}

func clipBody(b []byte) string {
	s := string(b)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
