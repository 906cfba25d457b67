package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "write FuzzDeviceAttestation's seeds under testdata/fuzz")

// TestWriteFuzzSeeds writes deviceAttestationSeeds as seed files when run
// with -write-fuzz-seeds (existing files are kept).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/FuzzDeviceAttestation/seed-*")
	}
	for i, b := range deviceAttestationSeeds() {
		fuzzseed.Write(t, "FuzzDeviceAttestation", fuzzseed.Name(fmt.Sprint(i)), b)
	}
}

// FuzzLiveNotice: what a node takes off LiveTopic is refused with
// ErrBadRequest or is a listing whose ID names its broadcaster and whose
// link is the broadcast's. Seeds are in testdata/fuzz/FuzzLiveNotice/.
func FuzzLiveNotice(f *testing.F) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA.abcd"
	b, _ := json.Marshal(LiveNotice{Listing: &Listing{ID: id, Broadcaster: strings.Split(id, ".")[0], Title: "t",
		Link: "peerscope://" + id, Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Version: 3,
		Who: &Account{Provider: "twitter", Subject: "1", Handle: "@a"}}})
	f.Add(b)
	f.Add([]byte(`{"broadcast":null}`))
	f.Add([]byte(`{"broadcast":{"id":"x.y"}}`))
	b, _ = json.Marshal(LiveNotice{Listing: &Listing{ID: id, Broadcaster: strings.Split(id, ".")[0], Title: "t",
		Link: "peerscope://" + id, Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Version: 3, Location: &Location{Lat: -33.9, Lon: 151.2}}})
	f.Add(b)
	f.Add([]byte(`{"broadcast":{"location":{"lat":1e400,"lon":0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLiveNotice(data)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if p, err := BroadcasterOf(l.ID); err != nil || p.String() != l.Broadcaster || !strings.HasPrefix(l.Link, "peerscope://"+l.ID) {
			t.Fatalf("accepted %+v", l)
		}
		if p := l.Location; p != nil && p.Check() != nil {
			t.Fatalf("accepted a location off the map: %+v", *p)
		}
		if b, err := EncodeLiveNotice(l); err == nil {
			if l2, err := DecodeLiveNotice(b); err != nil || l2.ID != l.ID || l2.Link != l.Link {
				t.Fatalf("re-encoded notice: %+v, %v", l2, err)
			}
		}
	})
}

// trustSeeds are trust statement bodies: a good one, and ones that break
// something the decoder checks.
func trustSeeds() [][]byte {
	good, _ := json.Marshal(TrustStatement{Bootstrap: fuzzIdentityID, Issued: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Keys: identity.KeySet{Keys: []identity.Key{{Public: ed25519.PublicKey(bytes.Repeat([]byte{1}, 32))}},
			Revocations: []identity.Revocation{{Peer: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", Before: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}}})
	return [][]byte{good,
		[]byte(`{"bootstrap":"` + fuzzIdentityID + `","keys":{"keys":[]}}`),
		[]byte(`{"bootstrap":"` + fuzzIdentityID + `","keys":{"keys":[{"public":"AAAA"}],"revocations":[{"attestation":"zz"}]}}`),
		[]byte(`{"bootstrap":"other","keys":{"keys":[]}} {}`),
	}
}

var (
	fuzzIdentity   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	fuzzIdentityID = Fingerprint(fuzzIdentity.Public().(ed25519.PublicKey))
)

// FuzzTrustStatement: a trust statement signed by the right identity key
// (whatever its body) is refused with ErrBadRequest or ErrUntrusted, or is
// a statement of that bootstrap whose keys and revocations pass their
// checks and whose key set has a current key. Seeds are in
// testdata/fuzz/FuzzTrustStatement/.
func FuzzTrustStatement(f *testing.F) {
	for _, b := range trustSeeds() {
		f.Add(b)
	}
	pub := fuzzIdentity.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, body []byte) {
		s := &Signed{Body: body, Signature: ed25519.Sign(fuzzIdentity, append([]byte(trustDomain), body...))}
		st, err := OpenTrust(s, pub, fuzzIdentityID)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUntrusted) {
				t.Fatalf("error %v is neither ErrBadRequest nor ErrUntrusted", err)
			}
			return
		}
		if _, ok := st.Keys.Current(); st.Bootstrap != fuzzIdentityID || st.Keys.Check() != nil || !ok {
			t.Fatalf("accepted %+v", st)
		}
		if _, err := identity.NewTrustSet(st.Keys); err != nil {
			t.Fatalf("an accepted statement makes no trust set: %v", err)
		}
		// Anything else signing it, or another bootstrap named, is refused.
		s.Signature[0] ^= 1
		if _, err := OpenTrust(s, pub, fuzzIdentityID); !errors.Is(err, ErrUntrusted) {
			t.Fatalf("a bad signature: %v", err)
		}
	})
}

// FuzzBootstrapURL: a bootstrap URL as a node is given it is refused with
// ErrBadRequest, or gives an http(s) base without a fragment and a pin
// that is a fingerprint or empty; plain http without a pin only to
// loopback.
func FuzzBootstrapURL(f *testing.F) {
	for _, s := range []string{"https://boot.example", "http://boot.example:8090#pin=" + fuzzIdentityID, "http://127.0.0.1:8090",
		"http://[::1]:1/x/", "http://boot.example", "ftp://x", "http://a#pin=zz", "https://u:p@x", "http://x?y=1#pin="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, pin, err := ParseBootstrapURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(base, "#") ||
			(pin != "" && !ValidFingerprint(pin)) || (u.Scheme == "http" && pin == "" && !isLoopback(u.Hostname())) {
			t.Fatalf("%q gave base %q, pin %q", s, base, pin)
		}
	})
}

// deviceAttestationSeeds are device attestation bodies: a good one, and
// ones that break something the decoder checks.
func deviceAttestationSeeds() [][]byte {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good, _ := json.Marshal(DeviceAttestation{Bootstrap: fuzzIdentityID, Issuer: fuzzIdentity.Public().(ed25519.PublicKey),
		Account: "twitter:100", Handle: "@alice", Peer: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
		Fingerprint: bytes.Repeat([]byte{5}, 32), Issued: at, Expires: at.Add(24 * time.Hour)})
	return [][]byte{good,
		[]byte(`{"bootstrap":"` + fuzzIdentityID + `","account":"nocolon","peer":"x","fingerprint":"AAAA"}`),
		[]byte(`{"issued":"2026-03-01T12:00:00Z","expires":"2027-03-01T12:00:00Z"}`),
		[]byte(`{"handle":"a\nb"} {}`),
	}
}

// FuzzDeviceAttestation: a device attestation signed by a trusted key
// (whatever its body) is refused with ErrBadRequest or as untrusted or
// expired, or names a peer, an account and a 32-byte fingerprint, lives at
// most identity.MaxLifetime and was issued by that key. Seeds are in
// testdata/fuzz/FuzzDeviceAttestation/.
func FuzzDeviceAttestation(f *testing.F) {
	for _, b := range deviceAttestationSeeds() {
		f.Add(b)
	}
	pub := fuzzIdentity.Public().(ed25519.PublicKey)
	trust, err := identity.Trust(pub)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		s := &Signed{Body: body, Signature: ed25519.Sign(fuzzIdentity, append([]byte(deviceAttestationDomain), body...))}
		a, err := OpenDeviceAttestation(s, trust, now)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUntrusted) && !errors.Is(err, identity.ErrUntrusted) && !errors.Is(err, identity.ErrExpired) {
				t.Fatalf("error %v is not of a kind", err)
			}
			return
		}
		if !bytes.Equal(a.Issuer, pub) || len(a.Fingerprint) != 32 || CheckAccountKey(a.Account) != nil ||
			a.Expires.Sub(a.Issued) > identity.MaxLifetime || !now.Before(a.Expires) {
			t.Fatalf("accepted %+v", a)
		}
		s.Signature[0] ^= 1
		if _, err := OpenDeviceAttestation(s, trust, now); !errors.Is(err, ErrUntrusted) {
			t.Fatalf("a bad signature: %v", err)
		}
	})
}
