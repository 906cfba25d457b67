package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/link"
)

// The decoders of the API: request bodies (strict JSON into the request
// types, then their checks), the signed-request headers, broadcast IDs,
// account keys, phone numbers and the key file. Each must refuse what it
// cannot use with an error of its kind, never panic. Seeds are in
// testdata/fuzz/<name>/ (the live notice's, a node's decoder, in
// api/testdata/fuzz/).

var fuzzNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const fuzzID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA.abcd"

func FuzzListingUpdate(f *testing.F) {
	f.Add([]byte(`{"title":"t","link":"peerscope://` + fuzzID + `","started":"2026-03-01T11:00:00Z","version":1}`))
	f.Add([]byte(`{"title":"t","link":"peerscope://` + fuzzID + `?peer=x","started":"2026-03-01T11:00:00Z","ended":"2026-03-01T11:30:00Z","viewers":3,"version":9,"tweet":true}`))
	f.Add([]byte(`{"title":"t","link":"peerscope://` + fuzzID + `?peer=/ip4/1.2.3.4/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","started":"2026-03-01T11:00:00Z","version":1}`))
	f.Add([]byte(`{"title":"\u2028"}`))
	f.Add([]byte(`{"version":1e30}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`{"title":"t","link":"peerscope://` + fuzzID + `","started":"2026-03-01T11:00:00Z","version":1,"location":{"lat":48.86,"lon":2.35}}`))
	f.Add([]byte(`{"title":"t","link":"peerscope://` + fuzzID + `","started":"2026-03-01T11:00:00Z","version":1,"location":{"lat":-90.01,"lon":180}}`))
	f.Add([]byte(`{"title":"t","link":"peerscope://` + fuzzID + `","started":"2026-03-01T11:00:00Z","version":1,"location":{"lon":2}}`))
	f.Add([]byte(`{"location":{"lat":"1","lon":[2]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPut, "/api/v1/broadcasts/"+fuzzID, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var a api.ListingUpdate
		err := decodeStrict(r, body, &a)
		if err == nil {
			err = a.Check(fuzzID, fuzzNow, time.Minute)
		}
		if err != nil && !errors.Is(err, ErrBadRequest) {
			t.Fatalf("error %v is not ErrBadRequest", err)
		}
		if err == nil {
			if l, err := link.Parse(a.Link); err != nil || l.Broadcast != fuzzID || l.String() != a.Link {
				t.Fatalf("accepted link %q: %v", a.Link, err)
			}
			if a.Version == 0 || !strings.HasPrefix(a.Link, "peerscope://"+fuzzID) || a.Started.After(fuzzNow.Add(time.Minute)) {
				t.Fatalf("accepted %+v", a)
			}
			if l := a.Location; l != nil && (!(l.Lat >= -90 && l.Lat <= 90) || !(l.Lon >= -180 && l.Lon <= 180)) {
				t.Fatalf("accepted a location off the map: %+v", *l)
			}
		}
	})
}

func FuzzRequestBodies(f *testing.F) {
	f.Add([]byte(`{"phone":"+15550100","code":"123456"}`))
	f.Add([]byte(`{"scopes":["follows","tweet"]}`))
	f.Add([]byte(`{"manifest":"bafy"}`))
	f.Add([]byte(`{"attestation":"AAAA","peer":"x"}`))
	f.Add([]byte(`{"code":"ABCD-EFGH"}`))
	f.Add([]byte(`{"everywhere":true}`))
	f.Add([]byte(`{"return":"http://127.0.0.1:8080/directory/","scopes":["follows"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
		for _, v := range []any{new(api.PhoneStart), new(api.PhoneVerify), new(api.TwitterStart), new(api.ReplayEntry), new(api.VerifyRequest),
			new(api.TwitterFinish), new(api.SignOut), new(api.RevokeSession)} {
			if err := decodeStrict(r, body, v); err != nil && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%T: error %v is not ErrBadRequest", v, err)
			}
		}
	})
}

// FuzzSignedHeaders feeds the five signature headers, separated by
// newlines, to the verifier.
func FuzzSignedHeaders(f *testing.F) {
	priv, _, _ := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	keys, err := newKeyRing(keyFile{Seed: bytes.Repeat([]byte{1}, 32), Secret: bytes.Repeat([]byte{2}, 32), Identity: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/attestation", nil)
	_ = api.SignRequest(r, nil, priv, keys.ID(), fuzzNow)
	f.Add(r.Header.Get(api.HeaderPeer) + "\n" + r.Header.Get(api.HeaderTime) + "\n" + r.Header.Get(api.HeaderNonce) + "\n" + r.Header.Get(api.HeaderSignature) + "\n" + keys.ID())
	f.Add("12D3KooW\n1\nnonce-nonce-nonce-nonce\n!!\n" + keys.ID())
	f.Add("\n\n\n")
	s := &Server{cfg: ServerConfig{Now: func() time.Time { return fuzzNow }, ClockSkew: time.Minute, Keys: keys}}
	f.Fuzz(func(t *testing.T, headers string) {
		parts := strings.SplitN(headers, "\n", 5)
		for len(parts) < 5 {
			parts = append(parts, "")
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/attestation", nil)
		for i, h := range []string{api.HeaderPeer, api.HeaderTime, api.HeaderNonce, api.HeaderSignature, api.HeaderBootstrap} {
			r.Header[h] = []string{parts[i]}
		}
		if _, _, _, err := s.checkSignature(r, nil); err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("error %v is not ErrUnauthenticated", err)
		}
	})
}

func FuzzIdentifiers(f *testing.F) {
	for _, s := range []string{fuzzID, "x.y", ".abc", "12D3KooW.", "twitter:123", "phone:p0123", "+15550100", "+0123456789", "tw:",
		"http://127.0.0.1:8080/directory/", "http://evil.example/", "abcd-efgh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := api.BroadcasterOf(s); err == nil {
			if !strings.HasPrefix(s, p.String()+".") {
				t.Fatalf("BroadcasterOf(%q) = %s", s, p)
			}
		} else if !errors.Is(err, ErrBadRequest) {
			t.Fatal(err)
		}
		if err := api.CheckAccountKey(s); err != nil && !errors.Is(err, ErrBadRequest) {
			t.Fatal(err)
		}
		if p, ok := normalizePhone(s); ok && (p != s || p[0] != '+') {
			t.Fatalf("normalizePhone(%q) = %q", s, p)
		}
		_ = maskPhone(s)
		_ = normalizeSigninCode(s)
		if err := checkReturnURL(s); err != nil && !errors.Is(err, ErrBadRequest) {
			t.Fatalf("checkReturnURL(%q): %v is not ErrBadRequest", s, err)
		} else if err == nil && s != "" && !strings.HasPrefix(s, "http") {
			t.Fatalf("checkReturnURL took %q", s)
		}
	})
}

func FuzzKeyFile(f *testing.F) {
	good, _ := json.Marshal(keyFile{Seed: bytes.Repeat([]byte{1}, 32), Secret: bytes.Repeat([]byte{2}, 32), Identity: bytes.Repeat([]byte{3}, 32)})
	f.Add(good)
	f.Add([]byte(`{"seed":"AAAA","secret":"AAAA"}`))
	f.Add([]byte(`{"seed":"` + strings.Repeat("A", 43) + `=","secret":"` + strings.Repeat("A", 43) + `=","retired":[{"public":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var kf keyFile
		if json.Unmarshal(b, &kf) != nil {
			return
		}
		k, err := newKeyRing(kf)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		if err := k.KeySet().Check(); err != nil {
			t.Fatalf("accepted a key set that fails its check: %v", err)
		}
	})
}
