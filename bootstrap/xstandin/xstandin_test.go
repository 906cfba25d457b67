package xstandin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestProtocol walks the stand-in's OAuth 2.0 + PKCE flow by hand and
// checks its refusals: a wrong client secret, a wrong verifier, a reused
// code, a token without the scope an endpoint needs.
func TestProtocol(t *testing.T) {
	const redirect = "https://boot.example/cb"
	p := New(Config{ClientID: "id", ClientSecret: "secret", RedirectURIs: []string{redirect}})
	p.AddUser(User{ID: "1", Username: "alice", Name: "Alice"})
	p.Follow("1", "2", "3")
	srv := httptest.NewServer(p)
	defer srv.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	authorize := func(q url.Values) *http.Response {
		resp, err := noFollow.Get(srv.URL + "/i/oauth2/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	q := url.Values{"response_type": {"code"}, "client_id": {"id"}, "redirect_uri": {redirect}, "state": {"s1"},
		"scope": {"users.read tweet.read"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if r := authorize(url.Values{"client_id": {"id"}, "redirect_uri": {"https://evil.example/cb"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered redirect: %d", r.StatusCode)
	}
	plain := url.Values{}
	for k, v := range q {
		plain[k] = v
	}
	plain.Set("code_challenge_method", "plain")
	if loc, _ := url.Parse(authorize(plain).Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("plain PKCE accepted: %s", loc)
	}
	loc, _ := url.Parse(authorize(q).Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("redirect %s", loc)
	}
	token := func(code, verifier, secret string) (int, map[string]any) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("id", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := token(code, verifier, "wrong"); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", st, out)
	}
	if st, out := token(code, strings.Repeat("w", 43), "secret"); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", st, out)
	}
	// The failed exchange used the code up.
	if st, _ := token(code, verifier, "secret"); st != http.StatusBadRequest {
		t.Fatalf("reused code: %d", st)
	}
	loc, _ = url.Parse(authorize(q).Header.Get("Location"))
	st, out := token(loc.Query().Get("code"), verifier, "secret")
	if st != http.StatusOK || out["token_type"] != "bearer" || out["refresh_token"] != nil {
		t.Fatalf("token: %d %v", st, out)
	}
	bearer := out["access_token"].(string)
	call := func(method, path string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"text":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := call(http.MethodGet, "/2/users/me"); c != http.StatusOK {
		t.Fatalf("users/me: %d", c)
	}
	if c := call(http.MethodGet, "/2/users/1/following"); c != http.StatusForbidden {
		t.Fatalf("following without follows.read: %d", c)
	}
	if c := call(http.MethodPost, "/2/tweets"); c != http.StatusForbidden || len(p.Tweets()) != 0 {
		t.Fatalf("tweet without tweet.write: %d", c)
	}
	bearer = "nope"
	if c := call(http.MethodGet, "/2/users/me"); c != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", c)
	}
}
