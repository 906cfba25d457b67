package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// badInput is a request TestBadInput sends and the answer it expects.
type badInput struct {
	name   string
	signer *node
	method string
	path   string
	ctype  string
	body   []byte
	status int
	code   string
}

// TestBadInput: malformed, unknown, oversized and mistyped bodies, and
// forged or replayed signatures: each a clear 4xx JSON error, and nothing
// stored.
func TestBadInput(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		alice, bob := e.node(1), e.node(2)
		id := alice.broadcastID("aaaa")
		path := "/api/v1/broadcasts/" + id
		good, _ := json.Marshal(announcement(id, "ok", e.clock.Now(), 1))
		const js = "application/json"
		cases := []badInput{
			{"malformed JSON", alice, "PUT", path, js, []byte(`{"title": "x",`), 400, "bad_request"},
			{"not an object", alice, "PUT", path, js, []byte(`[1,2]`), 400, "bad_request"},
			{"unknown field", alice, "PUT", path, js, bytes.Replace(good, []byte(`{`), []byte(`{"admin":true,`), 1), 400, "bad_request"},
			{"trailing data", alice, "PUT", path, js, append(append([]byte{}, good...), []byte(`{}`)...), 400, "bad_request"},
			{"wrong type", alice, "PUT", path, js, bytes.Replace(good, []byte(`"version":1`), []byte(`"version":"1"`), 1), 400, "bad_request"},
			{"oversized", alice, "PUT", path, js, append(append([]byte{}, good[:len(good)-1]...), []byte(`,"title":"`+strings.Repeat("x", 20<<10)+`"}`)...), 413, "too_large"},
			{"text/plain", alice, "PUT", path, "text/plain", good, 415, "unsupported_media_type"},
			{"no content type", alice, "PUT", path, "", good, 415, "unsupported_media_type"},
			{"unsigned", nil, "PUT", path, js, good, 401, "unauthenticated"},
			{"another's broadcast", bob, "PUT", path, js, good, 403, "forbidden"},
			{"bad broadcast ID", alice, "PUT", "/api/v1/broadcasts/nodot", js, good, 400, "bad_request"},
			{"link to another broadcast", alice, "PUT", path, js, bytes.Replace(good, []byte(id+"?"), []byte(id+"x?"), 1), 400, "bad_request"},
			{"link without a peer", alice, "PUT", path, js, mustJSON(api.ListingUpdate{Title: "x", Link: "peerscope://" + id, Started: e.clock.Now(), Version: 1}), 400, "bad_request"},
			{"link not canonical", alice, "PUT", path, js, mustJSON(api.ListingUpdate{Title: "x", Link: announcement(id, "x", e.clock.Now(), 1).Link + "&x=1", Started: e.clock.Now(), Version: 1}), 400, "bad_request"},
			{"link with a quote", alice, "PUT", path, js, mustJSON(api.ListingUpdate{Title: "x", Link: "peerscope://" + id + "?peer=/dns4/a'b/tcp/1/p2p/" + alice.id.String(), Started: e.clock.Now(), Version: 1}), 400, "bad_request"},
			{"title with a newline", alice, "PUT", path, js, bytes.Replace(good, []byte(`"title":"ok"`), []byte(`"title":"o\nk"`), 1), 400, "bad_request"},
			{"started in the future", alice, "PUT", path, js, mustJSON(announcement(id, "x", e.clock.Now().Add(time.Hour), 1)), 400, "bad_request"},
			{"no version", alice, "PUT", path, js, mustJSON(announcement(id, "x", e.clock.Now(), 0)), 400, "bad_request"},
			{"unknown endpoint", nil, "GET", "/api/v1/nope", "", nil, 404, "not_found"},
			{"bad list state", nil, "GET", "/api/v1/broadcasts?state=all", "", nil, 400, "bad_request"},
			{"bad list limit", nil, "GET", "/api/v1/broadcasts?limit=100000", "", nil, 400, "bad_request"},
			{"phone start, unknown field", alice, "POST", "/api/v1/auth/phone/start", js, []byte(`{"phone":"+15550100","sms":true}`), 400, "bad_request"},
			{"twitter start, unknown scope", alice, "POST", "/api/v1/auth/twitter/start", js, []byte(`{"scopes":["dm.read"]}`), 400, "bad_request"},
			{"verify, malformed", nil, "POST", "/api/v1/attestation/verify", js, []byte(`{"attestation":"!!"}`), 400, "bad_request"},
			{"twitter start, return elsewhere", alice, "POST", "/api/v1/auth/twitter/start", js, []byte(`{"return":"https://evil.example/"}`), 400, "bad_request"},
			{"twitter start, return with a fragment", alice, "POST", "/api/v1/auth/twitter/start", js, []byte(`{"return":"http://127.0.0.1:8080/#x"}`), 400, "bad_request"},
			{"twitter start, return not http", alice, "POST", "/api/v1/auth/twitter/start", js, []byte(`{"return":"javascript:alert(1)"}`), 400, "bad_request"},
			{"twitter finish, malformed code", alice, "POST", "/api/v1/auth/twitter/finish", js, []byte(`{"code":"<script>"}`), 400, "bad_request"},
			{"twitter finish, wrong code", alice, "POST", "/api/v1/auth/twitter/finish", js, []byte(`{"code":"ABCD-EFGH"}`), 400, "invalid_code"},
			{"twitter finish, unsigned", nil, "POST", "/api/v1/auth/twitter/finish", js, []byte(`{"code":"ABCD-EFGH"}`), 401, "unauthenticated"},
			{"sign-out, unknown field", alice, "POST", "/api/v1/auth/signout", js, []byte(`{"all":true}`), 400, "bad_request"},
			{"sessions, not signed in", alice, "GET", "/api/v1/sessions", "", nil, 403, "not_signed_in"},
			{"revoke session, not signed in", alice, "POST", "/api/v1/sessions/revoke", js, []byte(`{"peer":"x"}`), 403, "not_signed_in"},
		}
		cases = append(cases, audienceBadInput(e, alice, bob)...)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, code := e.raw(c.signer, c.method, c.path, c.ctype, c.body)
				if status != c.status || code != c.code {
					t.Fatalf("%d %s, want %d %s", status, code, c.status, c.code)
				}
			})
		}

		// Signatures: a body changed after signing, a request signed for
		// another path, an old one, a replayed one.
		send := func(mutate func(r *http.Request) *http.Request) (int, string) {
			req, _ := http.NewRequest(http.MethodPut, e.url+path, bytes.NewReader(good))
			req.Header.Set("Content-Type", js)
			if err := api.SignRequest(req, good, alice.key, e.svc.Keys.ID(), e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			req = mutate(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ae struct{ Error struct{ Code string } }
			_ = json.NewDecoder(resp.Body).Decode(&ae)
			return resp.StatusCode, ae.Error.Code
		}
		for name, mutate := range map[string]func(*http.Request) *http.Request{
			"body changed": func(r *http.Request) *http.Request {
				b := bytes.Replace(good, []byte(`"ok"`), []byte(`"KO"`), 1)
				r.Body, r.ContentLength = ioNopCloser(b), int64(len(b))
				return r
			},
			"other path": func(r *http.Request) *http.Request {
				r2, _ := http.NewRequest(http.MethodPut, e.url+"/api/v1/broadcasts/"+alice.broadcastID("zzzz"), bytes.NewReader(good))
				r2.Header = r.Header
				return r2
			},
			"other peer's header": func(r *http.Request) *http.Request {
				r.Header.Set(api.HeaderPeer, bob.id.String())
				return r
			},
			"old": func(r *http.Request) *http.Request {
				old := e.clock.Now().Add(-bootstrap.DefaultClockSkew - time.Second)
				req, _ := http.NewRequest(http.MethodPut, e.url+path, bytes.NewReader(good))
				req.Header.Set("Content-Type", js)
				_ = api.SignRequest(req, good, alice.key, e.svc.Keys.ID(), old)
				return req
			},
		} {
			if status, code := send(mutate); status != 401 || code != "unauthenticated" {
				t.Errorf("%s: %d %s, want 401 unauthenticated", name, status, code)
			}
		}
		for _, table := range []string{"broadcasts", "sessions", "attestations", "oauth_states", "signins", "revocations", "accounts",
			"device_keys", "rosters", "audiences", "roster_devices", "bundles", "audience_groups"} {
			if n := e.count(table); n != 0 {
				t.Fatalf("%d rows in %s after refusals", n, table)
			}
		}
		// A good request goes through once; the same bytes again do not.
		var replay *http.Request
		if status, _ := send(func(r *http.Request) *http.Request {
			replay, _ = http.NewRequest(http.MethodPut, e.url+path, bytes.NewReader(good))
			replay.Header = r.Header.Clone()
			return r
		}); status != 200 {
			t.Fatalf("good request: %d", status)
		}
		resp, err := http.DefaultClient.Do(replay)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("replayed request: %d, want 401", resp.StatusCode)
		}
	})
}

// TestRateLimits: per address on every request, per peer on signed ones,
// per account across its nodes, on the injected clock.
func TestRateLimits(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) {
			c.RateIP = bootstrap.Rate{PerSecond: 10, Burst: 20}
			c.RatePeer = bootstrap.Rate{PerSecond: 1, Burst: 3}
			c.RateAccount = bootstrap.Rate{PerSecond: 1, Burst: 4}
		})
		ctx := context.Background()
		alice := e.node(1)
		// Two nodes of one account share the account's bucket.
		phone1, phone2 := e.node(21), e.node(22)
		for _, n := range []*node{phone1, phone2} {
			if err := n.c.PhoneStart(ctx, "+15550123"); err != nil {
				t.Fatal(err)
			}
			if _, err := n.c.PhoneVerify(ctx, "+15550123", e.codes.code("+15550123")); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(3 * time.Second) // the peers' buckets refill; the account's is full
		for i, n := range []*node{phone1, phone2, phone1, phone2} {
			if _, err := n.c.Following(ctx); err != nil {
				t.Fatalf("account request %d: %v", i, err)
			}
		}
		_, err := phone1.c.Following(ctx) // phone1's own bucket has a token left
		mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
		if s, c := apiStatus(err); s != 429 || c != "rate_limited" || !strings.Contains(err.Error(), "account") {
			t.Fatalf("not the account's limit: %v", err)
		}
		e.clock.Advance(time.Second)
		id := alice.broadcastID("aaaa")
		for v := uint64(1); v <= 3; v++ {
			if _, err := alice.c.Announce(ctx, id, announcement(id, "x", e.clock.Now(), v)); err != nil {
				t.Fatalf("announce %d: %v", v, err)
			}
		}
		_, err = alice.c.Announce(ctx, id, announcement(id, "x", e.clock.Now(), 4))
		mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
		e.clock.Advance(time.Second)
		if _, err := alice.c.Announce(ctx, id, announcement(id, "x", e.clock.Now(), 4)); err != nil {
			t.Fatalf("after a second: %v", err)
		}
		// The address: 20 requests in all so far at most; the rest refused.
		refused := 0
		for i := 0; i < 30; i++ {
			if _, err := alice.c.List(ctx, api.Query{}); err != nil {
				mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
				refused++
			}
		}
		if refused < 10 {
			t.Fatalf("%d of 30 refused", refused)
		}
		e.clock.Advance(10 * time.Second)
		if _, err := alice.c.List(ctx, api.Query{}); err != nil {
			t.Fatalf("after the bucket refilled: %v", err)
		}
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
