package bootstrap_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// browser is a test HTTP client that follows redirects and keeps cookies,
// as a browser does through an OAuth sign-in.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// stopAtCallback is a browser that stops at the redirect back to the
// bootstrap, so a test can look at (or steal) the code.
func stopAtCallback(t *testing.T) *http.Client {
	c := browser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestTwitterSignIn runs the whole OAuth 2.0 + PKCE flow against the
// stand-in: the node asks to sign in, a browser follows the redirects,
// the bootstrap exchanges the code, and the node's attestation is believed
// by another node that trusts this bootstrap, for this peer only, until it
// expires.
func TestTwitterSignIn(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice := e.node(1)
		start, err := alice.c.TwitterStart(ctx, "", api.ScopeFollows)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(start.AuthorizeURL)
		if u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("client_id") != clientID ||
			!strings.Contains(u.Query().Get("scope"), "follows.read") {
			t.Fatalf("authorize URL %s", start.AuthorizeURL)
		}
		// Without a return URL, the page shows the code to type on the node.
		resp, page := get(t, browser(t), start.AuthorizeURL)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "@alice") {
			t.Fatalf("callback page: %d %q", resp.StatusCode, page)
		}
		if _, err := alice.c.Attestation(ctx); err == nil {
			t.Fatal("an attestation before the node redeemed the sign-in")
		}
		got, err := alice.c.TwitterFinish(ctx, strings.ToLower(pageCode(t, page))) // as typed
		if err != nil {
			t.Fatal(err)
		}
		if again, err := alice.c.Attestation(ctx); err != nil || !bytes.Equal(again.Attestation, got.Attestation) {
			t.Fatalf("the attestation fetched again: %v", err)
		}
		if got.Account.Handle != "@alice" || got.Account.Subject != "100" || got.Account.Provider != "twitter" {
			t.Fatalf("account %+v", got.Account)
		}

		// Another node: it knows only the bootstrap's URL.
		trust, err := api.TrustSetFrom(ctx, nil, e.url)
		if err != nil {
			t.Fatal(err)
		}
		a, err := trust.VerifyBytes(got.Attestation, alice.id, e.clock.Now())
		if err != nil {
			t.Fatalf("another node refuses the attestation: %v", err)
		}
		if a.Handle != "@alice" || a.Name != "Alice Example" || a.Avatar != "https://pbs.example/alice.png" {
			t.Fatalf("attestation %+v", a)
		}
		bob := e.node(2)
		if _, err := trust.VerifyBytes(got.Attestation, bob.id, e.clock.Now()); !errors.Is(err, identity.ErrWrongPeer) {
			t.Fatalf("presented by another peer: %v", err)
		}
		if _, err := trust.VerifyBytes(got.Attestation, alice.id, e.clock.Now().Add(bootstrap.DefaultAttestationTTL)); !errors.Is(err, identity.ErrExpired) {
			t.Fatalf("after its expiry: %v", err)
		}
		forged := append([]byte(nil), got.Attestation...)
		i := strings.Index(string(forged), "@alice")
		forged[i+1] = 'm' // "@mlice"
		if _, err := trust.VerifyBytes(forged, alice.id, e.clock.Now()); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("forged handle: %v", err)
		}
		// The follows were imported as suggestions at sign-in.
		e.x.Follow("100", "200", "300")
		sug, err := alice.c.ImportFollows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sug) != 2 || sug[0].Account != "twitter:200" || sug[1].Account != "twitter:300" {
			t.Fatalf("suggestions %+v", sug)
		}

		// The code is single use.
		if _, err := alice.c.TwitterFinish(ctx, pageCode(t, page)); err == nil {
			t.Fatal("a code redeemed twice")
		}

		// The state is single use: the same callback again is refused, and
		// stores nothing more.
		accounts, atts, signins := e.count("accounts"), e.count("attestations"), e.count("signins")
		b := stopAtCallback(t)
		start2, err := alice.c.TwitterStart(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ = get(t, b, start2.AuthorizeURL)
		callback := resp.Header.Get("Location")
		if resp, _ := get(t, b, callback); resp.StatusCode != http.StatusOK {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		resp, body := get(t, b, callback)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_state") {
			t.Fatalf("replayed callback: %d %s", resp.StatusCode, body)
		}
		if e.count("accounts") != accounts || e.count("attestations") != atts || e.count("signins") != signins+1 {
			t.Fatalf("replay stored something: %d accounts, %d attestations, %d sign-ins", e.count("accounts"), e.count("attestations"), e.count("signins"))
		}
	})
}

// TestTwitterRefusals: an expired state, a stolen code presented with
// another sign-in's state (so with the wrong PKCE verifier), a state never
// issued, a provider error: each a clear 4xx, nothing stored.
func TestTwitterRefusals(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		victim, attacker := e.node(1), e.node(2)

		// The victim's code, stolen at the redirect.
		vs, err := victim.c.TwitterStart(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := get(t, stopAtCallback(t), vs.AuthorizeURL)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		code := loc.Query().Get("code")
		if code == "" {
			t.Fatalf("no code in %s", loc)
		}
		as, err := attacker.c.TwitterStart(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		aURL, _ := url.Parse(as.AuthorizeURL)
		forged := e.url + "/api/v1/auth/twitter/callback?" + url.Values{"state": {aURL.Query().Get("state")}, "code": {code}}.Encode()
		calls := e.x.TokenCalls()
		resp, body := get(t, browser(t), forged)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "provider_refused") || !strings.Contains(body, "code_verifier") {
			t.Fatalf("stolen code with another verifier: %d %s", resp.StatusCode, body)
		}
		if e.x.TokenCalls() != calls+1 {
			t.Fatal("the provider was not asked: the verifier was not checked by it")
		}

		// Unknown state; provider error; an expired state.
		resp, body = get(t, browser(t), e.url+"/api/v1/auth/twitter/callback?state=nope&code=x")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_state") {
			t.Fatalf("unknown state: %d %s", resp.StatusCode, body)
		}
		ds, _ := victim.c.TwitterStart(ctx, "")
		resp, body = get(t, browser(t), ds.AuthorizeURL+"&deny=1")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "access_denied") {
			t.Fatalf("denied: %d %s", resp.StatusCode, body)
		}
		es, _ := victim.c.TwitterStart(ctx, "")
		e.clock.Advance(bootstrap.DefaultOAuthStateTTL)
		resp, body = get(t, browser(t), es.AuthorizeURL)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_state") {
			t.Fatalf("expired state: %d %s", resp.StatusCode, body)
		}
		for _, table := range []string{"accounts", "sessions", "attestations", "provider_tokens", "signins"} {
			if n := e.count(table); n != 0 {
				t.Errorf("%d rows in %s after refusals", n, table)
			}
		}
		if _, err := victim.c.Attestation(ctx); err == nil {
			t.Fatal("an attestation after only refusals")
		}
	})
}

// TestPhoneSignUp: a code sent, guessed wrong, then right; the attestation
// hides the number and shows a fingerprint; guessing locks the guesser;
// codes expire; sends are limited per node.
func TestPhoneSignUp(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		carol, mallory := e.node(3), e.node(4)
		const phone = "+15550100"
		if err := carol.c.PhoneStart(ctx, phone); err != nil {
			t.Fatal(err)
		}
		code := e.codes.code(phone)
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		_, err := carol.c.PhoneVerify(ctx, phone, wrong)
		mustStatus(t, err, http.StatusBadRequest, "invalid_code")
		// Someone else with the right code: the code is bound to the peer
		// that asked for it.
		_, err = mallory.c.PhoneVerify(ctx, phone, code)
		mustStatus(t, err, http.StatusBadRequest, "invalid_code")
		if e.count("accounts") != 0 {
			t.Fatal("an account before a right code")
		}
		res, err := carol.c.PhoneVerify(ctx, phone, code)
		if err != nil {
			t.Fatal(err)
		}
		trust, _ := api.TrustSetFrom(ctx, nil, e.url)
		a, err := trust.VerifyBytes(res.Attestation, carol.id, e.clock.Now())
		if err != nil {
			t.Fatalf("another node refuses the phone attestation: %v", err)
		}
		if a.Provider != "phone" || strings.Contains(string(res.Attestation), "5550100") || !strings.HasPrefix(a.Handle, "+1•••0100·") || len(a.Handle) < len("+1•••0100·")+5 {
			t.Fatalf("phone attestation %+v gives the number away or lacks the mask and fingerprint", a)
		}
		// Used once.
		_, err = carol.c.PhoneVerify(ctx, phone, code)
		mustStatus(t, err, http.StatusBadRequest, "invalid_code")

		// Guessing: five wrong codes lock the guesser, even for the right one.
		const other = "+447700900123"
		if err := mallory.c.PhoneStart(ctx, other); err != nil {
			t.Fatal(err)
		}
		right := e.codes.code(other)
		guesses := 0
		for g := 0; guesses < 5; g++ {
			c := strings.Repeat("0", 6-len(itoa(g))) + itoa(g)
			if c == right {
				continue
			}
			_, err = mallory.c.PhoneVerify(ctx, other, c)
			guesses++
			if guesses < 5 {
				mustStatus(t, err, http.StatusBadRequest, "invalid_code")
			} else {
				mustStatus(t, err, http.StatusTooManyRequests, "locked")
			}
		}
		_, err = mallory.c.PhoneVerify(ctx, other, right)
		mustStatus(t, err, http.StatusTooManyRequests, "locked")
		err = mallory.c.PhoneStart(ctx, other)
		mustStatus(t, err, http.StatusTooManyRequests, "locked")
		e.clock.Advance(time.Minute) // the address's phone starts refill

		// Expiry.
		const third = "+33612345678"
		if err := carol.c.PhoneStart(ctx, third); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(11 * time.Minute)
		_, err = carol.c.PhoneVerify(ctx, third, e.codes.code(third))
		mustStatus(t, err, http.StatusBadRequest, "invalid_code")
		// Sends per number and node: 3 an hour.
		for i := 0; i < 2; i++ {
			if err := carol.c.PhoneStart(ctx, third); err != nil {
				t.Fatal(err)
			}
		}
		mustStatus(t, carol.c.PhoneStart(ctx, third), http.StatusTooManyRequests, "rate_limited")
		if n := e.count("accounts"); n != 1 {
			t.Fatalf("%d accounts, want carol's only", n)
		}
		// Not a phone number.
		mustStatus(t, carol.c.PhoneStart(ctx, "5550100"), http.StatusBadRequest, "bad_request")
	})
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
