package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
)

// The decoders of the audience routes: the request bodies (strict JSON,
// then the audience objects in them, as the handlers parse and check them)
// and the device keys' lookup query. Seeds are in
// testdata/fuzz/FuzzAudienceBodies/ and FuzzDeviceKeyLookups/, written from
// the tables below with -write-fuzz-seeds (existing files are kept).

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "write the audience fuzz seeds under testdata/fuzz")

// audienceBodySeeds are request bodies of the audience routes: good ones
// (a device key, a roster, a bundle and a membership token of the fixed
// broadcaster's broadcast, a group) and broken ones.
func audienceBodySeeds(tb testing.TB) map[string][]byte {
	key, _, id := testutil.Broadcaster(tb)
	dev, err := audience.NewDeviceKey(rand.NewChaCha8([32]byte{1}), key, fuzzNow.Add(-time.Hour), fuzzNow.Add(24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	r := &audience.Roster{Broadcast: id, Version: 1, Issued: fuzzNow, Members: []audience.Member{{Account: "twitter:1",
		Devices: []audience.Device{{Peer: dev.Key.Peer, Fingerprint: dev.Key.Fingerprint()}}}}}
	if err := r.Sign(key); err != nil {
		tb.Fatal(err)
	}
	ep, err := audience.NewEpoch(rand.NewChaCha8([32]byte{2}), id, 1, [32]byte{3})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := ep.Wrap(key, dev.Key, fuzzNow)
	if err != nil {
		tb.Fatal(err)
	}
	tok := &audience.Token{Broadcast: id, Peer: dev.Key.Peer, RosterVersion: 1, Issued: fuzzNow, Expires: fuzzNow.Add(time.Hour)}
	if err := tok.Sign(key); err != nil {
		tb.Fatal(err)
	}
	must := func(v any) []byte {
		out, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	return map[string][]byte{
		"device-key":     must(api.DeviceKeyPublish{DeviceKey: dev.Key.Marshal()}),
		"roster":         must(api.RosterPut{Roster: r.Marshal()}),
		"bundles":        must(api.BundlesPut{Bundles: [][]byte{b.Marshal(), b.Marshal()}}),
		"group":          must(api.Group{Name: "family", Members: []string{"twitter:1", "phone:p2"}}),
		"group-twice":    []byte(`{"name":"g","members":["twitter:1","twitter:1"]}`),
		"not-base64":     []byte(`{"roster":"!!","device_key":"*","bundles":["-"]}`),
		"empty-objects":  []byte(`{"roster":"","device_key":"","bundles":[""]}`),
		"trailing":       []byte(`{"bundles":[]} {}`),
		"null-bundles":   []byte(`{"bundles":null}`),
		"group-bad-name": []byte(`{"name":"a b","members":[]}`),
		"tokens":         must(api.TokensPut{Tokens: [][]byte{tok.Marshal()}}),
		"tokens-twice":   must(api.TokensPut{Tokens: [][]byte{tok.Marshal(), tok.Marshal()}}),
		"tokens-garbage": []byte(`{"tokens":["AAAA","` + strings.Repeat("A", 100) + `"]}`),
	}
}

// lookupSeeds are queries of GET /api/v1/device-keys.
var lookupSeeds = map[string]string{
	"account":   "account=twitter:100",
	"handle":    "handle=%40alice",
	"both":      "account=twitter:100&handle=%40bob&account=phone:p1",
	"other":     "peer=12D3KooW",
	"empty":     "",
	"bad-key":   "account=nocolon&handle=",
	"newline":   "handle=a%0Ab",
	"semicolon": "account=twitter:1;handle=x",
}

// TestWriteAudienceFuzzSeeds writes the seeds when run with
// -write-fuzz-seeds.
func TestWriteAudienceFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/FuzzAudienceBodies and FuzzDeviceKeyLookups")
	}
	for name, b := range audienceBodySeeds(t) {
		fuzzseed.Write(t, "FuzzAudienceBodies", fuzzseed.Name(name), b)
	}
	for name, q := range lookupSeeds {
		fuzzseed.Write(t, "FuzzDeviceKeyLookups", fuzzseed.Name(name), []byte(q))
	}
}

// FuzzAudienceBodies: every body of the audience routes is refused with
// an error of its kind (400, or 403 for another peer's device key) or
// yields objects of the broadcast the route names, never a panic.
func FuzzAudienceBodies(f *testing.F) {
	for _, b := range audienceBodySeeds(f) {
		f.Add(b)
	}
	key, _, id := testutil.Broadcaster(f)
	signer, err := peer.IDFromPrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{cfg: ServerConfig{ClockSkew: time.Minute}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPut, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		kind := func(err error, also ...error) {
			t.Helper()
			if err == nil || errors.Is(err, ErrBadRequest) {
				return
			}
			for _, e := range also {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error %v is not of its kind", err)
		}
		var dk api.DeviceKeyPublish
		if err := decodeStrict(r, body, &dk); err == nil {
			k, err := s.checkDeviceKey(dk.DeviceKey, signer, fuzzNow)
			kind(err, ErrForbidden)
			if err == nil && k.Peer != signer {
				t.Fatalf("took %s's device key from %s", k.Peer, signer)
			}
		} else {
			kind(err)
		}
		var rp api.RosterPut
		if err := decodeStrict(r, body, &rp); err == nil {
			if roster, err := audience.ParseRoster(rp.Roster); err == nil && roster.Verify(id) == nil && roster.Broadcast != id {
				t.Fatalf("took a roster of %q for %q", roster.Broadcast, id)
			}
		} else {
			kind(err)
		}
		var bp api.BundlesPut
		if err := decodeStrict(r, body, &bp); err == nil {
			for _, raw := range bp.Bundles {
				_, _ = audience.ParseBundle(raw)
			}
		} else {
			kind(err)
		}
		if tokens, _, err := parseTokens(r, body, id, fuzzNow); err == nil {
			for _, tk := range tokens {
				if tk.Broadcast != id || tk.Verify(id, tk.Peer, fuzzNow) != nil {
					t.Fatalf("took a token of %q for %q that does not verify", tk.Broadcast, id)
				}
			}
		} else {
			kind(err)
		}
		var g api.Group
		if err := decodeStrict(r, body, &g); err == nil {
			kind(g.Check())
		} else {
			kind(err)
		}
	})
}

// FuzzDeviceKeyLookups: a query of GET /api/v1/device-keys is refused with
// ErrBadRequest, or asks for 1 to MaxDeviceKeyLookups valid account keys
// and handles.
func FuzzDeviceKeyLookups(f *testing.F) {
	for _, q := range lookupSeeds {
		f.Add([]byte(q))
	}
	f.Fuzz(func(t *testing.T, query []byte) {
		q, err := url.ParseQuery(string(query))
		if err != nil {
			return // the server's r.URL.Query() drops what does not parse
		}
		accounts, handles, err := parseLookups(q)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if n := len(accounts) + len(handles); n == 0 || n > api.MaxDeviceKeyLookups {
			t.Fatalf("took %d lookups", n)
		}
		for _, a := range accounts {
			if api.CheckAccountKey(a) != nil {
				t.Fatalf("took account %q", a)
			}
		}
	})
}
