package bootstrap_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// signV1 is how nodes before version 2 signed their requests (bootstrap/api
// at ee58606, kept here frozen): no bootstrap named, domain
// "peerscope/bootstrap-request/1".
func signV1(r *http.Request, body []byte, key crypto.PrivKey, now time.Time) {
	id, _ := peer.IDFromPrivateKey(key)
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sum := sha256.Sum256(body)
	payload := fmt.Appendf([]byte("peerscope/bootstrap-request/1\x00"), "%s\n%s\n%s\n%s\n%x", r.Method, r.URL.RequestURI(), ts, nonce, sum)
	sig, _ := key.Sign(payload)
	r.Header.Set("Peerscope-Peer", id.String())
	r.Header.Set("Peerscope-Time", ts)
	r.Header.Set("Peerscope-Nonce", nonce)
	r.Header.Set("Peerscope-Signature", base64.RawURLEncoding.EncodeToString(sig))
}

// TestOldNodeRefusedClearly: a node from before version 2 signs as it
// did; the bootstrap refuses it with a 401 whose code and message say the
// node must be upgraded, and stores nothing.
func TestOldNodeRefusedClearly(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.node(1)
	id := alice.broadcastID("old")
	body := mustJSON(announcement(id, "from an old node", e.clock.Now(), 1))
	req, _ := http.NewRequest(http.MethodPut, e.url+"/api/v1/broadcasts/"+id, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	signV1(req, body, alice.key, e.clock.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ae api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&ae)
	if resp.StatusCode != http.StatusUnauthorized || ae.Error.Code != "signature_version" || !strings.Contains(ae.Error.Message, "upgraded") {
		t.Fatalf("an old node's request: %d %+v", resp.StatusCode, ae.Error)
	}
	if n := e.count("broadcasts"); n != 0 {
		t.Fatalf("%d broadcasts stored", n)
	}
}

// oldInfo is /api/v1/info as a bootstrap before version 2 answered it
// (frozen): keys, no ID, no signed statement.
const oldInfo = `{"keys":{"keys":[{"public":"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="}]},"peer_id":"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","twitter":true,"phone":true,"time":"2026-03-01T12:00:00Z"}`

// TestNewNodeOldBootstrap: a node of this version meets a bootstrap from
// before it: reading its info, or any signed call, fails with
// ErrOldBootstrap (and says the bootstrap must be upgraded), before
// anything is signed for it.
func TestNewNodeOldBootstrap(t *testing.T) {
	signed := 0
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(api.HeaderSignature) != "" {
			signed++
		}
		if r.URL.Path == "/api/v1/info" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, oldInfo)
			return
		}
		http.Error(w, `{"error":{"code":"not_found","message":"no"}}`, http.StatusNotFound)
	}))
	defer old.Close()
	n := newEnv(t, nil).node(1)
	c := &api.Client{Base: old.URL, Key: n.key}
	ctx := context.Background()
	if _, err := c.Info(ctx); !errors.Is(err, api.ErrOldBootstrap) || !strings.Contains(err.Error(), "upgraded") {
		t.Fatalf("Info: %v, want ErrOldBootstrap", err)
	}
	if _, err := c.Attestation(ctx); !errors.Is(err, api.ErrOldBootstrap) {
		t.Fatalf("a signed call: %v, want ErrOldBootstrap", err)
	}
	if _, err := api.TrustSetFrom(ctx, nil, old.URL); !errors.Is(err, api.ErrOldBootstrap) {
		t.Fatalf("its keys: %v, want ErrOldBootstrap", err)
	}
	if signed != 0 {
		t.Fatalf("%d requests were signed for a bootstrap that cannot check them", signed)
	}
}

// TestPinnedBootstrap: a node given a bootstrap's fingerprint believes
// keys fetched over plain HTTP only as the pinned identity key signed them:
// the bootstrap itself passes; a wrong pin, another bootstrap answering at
// the address, or keys changed on the way are refused.
func TestPinnedBootstrap(t *testing.T) {
	e, other := newEnv(t, nil), newEnv(t, nil)
	ctx := context.Background()
	pin := e.svc.Keys.ID()
	info, err := (&api.Client{Base: e.url, Pin: pin}).Info(ctx)
	if err != nil || info.ID != pin || len(info.Keys.Keys) != 1 {
		t.Fatalf("the pinned bootstrap: %+v %v", info, err)
	}
	if _, err := (&api.Client{Base: other.url, Pin: pin}).Info(ctx); !errors.Is(err, api.ErrPin) {
		t.Fatalf("another bootstrap at the pinned address: %v, want ErrPin", err)
	}
	// Someone on the path swaps the attestation key for theirs, in the
	// unsigned field and in the statement's body.
	mitm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(e.url + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var i api.Info
		if json.Unmarshal(b, &i) == nil && i.Trust != nil {
			rogue := bytes.Repeat([]byte{0xee}, 32)
			i.Keys.Keys[0].Public = rogue
			i.Trust.Body = bytes.Replace(i.Trust.Body, mustJSON(e.svc.Keys.KeySet().Keys[0].Public), mustJSON(rogue), 1)
			b, _ = json.Marshal(i)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	defer mitm.Close()
	if _, err := (&api.Client{Base: mitm.URL, Pin: pin}).Info(ctx); !errors.Is(err, api.ErrUntrusted) {
		t.Fatalf("keys changed on the way: %v, want ErrUntrusted", err)
	}
	// How a node is given the pin.
	for s, want := range map[string]string{
		"https://boot.example":                            "",
		"http://127.0.0.1:8090":                           "",
		"http://boot.example:8090#pin=" + pin:             pin,
		"http://boot.example:8090/":                       "error",
		"http://boot.example:8090#" + pin:                 "error",
		"http://boot.example:8090#pin=nothex":             "error",
		"ftp://boot.example#pin=" + pin:                   "error",
		"https://user:pw@boot.example":                    "error",
		"http://[::1]:8090":                               "",
		"http://localhost:8090#pin=" + pin:                pin,
		"https://boot.example/path?x=1":                   "error",
		"http://boot.example#pin=" + url.QueryEscape(pin): pin,
	} {
		_, got, err := api.ParseBootstrapURL(s)
		if want == "error" && err == nil || want != "error" && (err != nil || got != want) {
			t.Errorf("ParseBootstrapURL(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
}
