package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
)

// The federation fuzz tests' fixed world: a broadcaster's key, the
// bootstrap its listings are signed for, and the instant they are checked.
var (
	fedBroadcaster = func() crypto.PrivKey {
		k, _ := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
		return k
	}()
	fedBroadcasterID, _ = peer.IDFromPrivateKey(fedBroadcaster)
	fedID               = fedBroadcasterID.String() + ".fuzz"
	fedNow              = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// signListing signs body as a node signs a listing of fedID for
// fuzzIdentityID.
func signListing(tb testing.TB, body []byte) SignedListing {
	tb.Helper()
	path := listingPrefix + fedID
	r, _ := http.NewRequest(http.MethodPut, "http://boot.example"+path, bytes.NewReader(body))
	if err := SignRequest(r, body, fedBroadcaster, fuzzIdentityID, fedNow); err != nil {
		tb.Fatal(err)
	}
	return SignedListing{Path: path, Peer: r.Header.Get(HeaderPeer), Time: r.Header.Get(HeaderTime), Nonce: r.Header.Get(HeaderNonce),
		Signature: r.Header.Get(HeaderSignature), Body: body}
}

// federationSeeds are listing bodies (FuzzSignedListing) and exports
// (FuzzFederationExport): good ones and ones that break a check.
func federationSeeds(tb testing.TB) (bodies, exports [][]byte) {
	good := ListingUpdate{Title: "Harbour at dawn", Link: "peerscope://" + fedID + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + fedBroadcasterID.String(),
		Started: fedNow.Add(-time.Minute), Viewers: 3, Version: 7, Location: &Location{Lat: 48.9, Lon: 2.4}}
	private := good
	private.Private = true
	bad := good
	bad.Link = "peerscope://" + fedID
	for _, u := range []ListingUpdate{good, private, bad} {
		b, _ := json.Marshal(u)
		bodies = append(bodies, b)
	}
	bodies = append(bodies, []byte(`{"title":"x","unknown":1}`), []byte(`{} {}`))
	for _, b := range bodies[:2] {
		x, _ := json.Marshal(FederationExport{Version: FederationVersion, Bootstrap: fuzzIdentityID, Broadcasts: []SignedListing{signListing(tb, b)}})
		exports = append(exports, x)
	}
	forged := signListing(tb, bodies[0])
	forged.Body = bytes.Replace(forged.Body, []byte("Harbour"), []byte("Harb0ur"), 1)
	x, _ := json.Marshal(FederationExport{Version: FederationVersion, Bootstrap: fuzzIdentityID, Broadcasts: []SignedListing{forged}})
	exports = append(exports, x,
		[]byte(`{"federation":2,"bootstrap":"`+fuzzIdentityID+`","broadcasts":[]}`),
		[]byte(`{"federation":1,"bootstrap":"nope"}`),
		[]byte(`{"federation":1,"bootstrap":"`+fuzzIdentityID+`","broadcasts":[{"path":"/api/v1/broadcasts/x.y","body":"e30="}]}`))
	return bodies, exports
}

// TestWriteFederationFuzzSeeds writes federationSeeds as seed files when
// run with -write-fuzz-seeds (existing files are kept).
func TestWriteFederationFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/Fuzz{SignedListing,FederationExport}/seed-*")
	}
	bodies, exports := federationSeeds(t)
	for i, b := range bodies {
		fuzzseed.Write(t, "FuzzSignedListing", fuzzseed.Name(string(rune('a'+i))), b)
	}
	for i, b := range exports {
		fuzzseed.Write(t, "FuzzFederationExport", fuzzseed.Name(string(rune('a'+i))), b)
	}
}

// checkVerified is what an entry that verified must be: a public, valid
// listing of the broadcast its path names, by that broadcaster.
func checkVerified(t *testing.T, s *SignedListing, v VerifiedListing) {
	t.Helper()
	if p, err := BroadcasterOf(v.ID); err != nil || p != v.Broadcaster || p.String() != s.Peer || s.Path != listingPrefix+v.ID {
		t.Fatalf("verified %q by %s, signed by %s", s.Path, v.Broadcaster, s.Peer)
	}
	if v.Update.Private || v.Update.Check(v.ID, fedNow, 2*time.Minute) != nil || v.Signed.After(fedNow.Add(2*time.Minute)) {
		t.Fatalf("verified a private or invalid listing: %+v", v.Update)
	}
}

// FuzzSignedListing: a body the broadcaster really signed is refused with
// ErrFederation or is a valid public listing; the same entry with its
// body changed, or checked for another bootstrap, is refused. Seeds are in
// testdata/fuzz/FuzzSignedListing/.
func FuzzSignedListing(f *testing.F) {
	bodies, _ := federationSeeds(f)
	for _, b := range bodies {
		f.Add(b)
	}
	other := strings.Repeat("0", FingerprintLen)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxFederatedBody+1 {
			return
		}
		s := signListing(t, body)
		v, err := s.Verify(fuzzIdentityID, fedNow, 2*time.Minute)
		if err != nil {
			if !errors.Is(err, ErrFederation) {
				t.Fatalf("error %v is not ErrFederation", err)
			}
			return
		}
		checkVerified(t, &s, v)
		if _, err := s.Verify(other, fedNow, 2*time.Minute); !errors.Is(err, ErrFederation) {
			t.Fatalf("verified for another bootstrap: %v", err)
		}
		if len(s.Body) > 0 {
			s.Body = bytes.Clone(s.Body)
			s.Body[len(s.Body)/2] ^= 1
			if _, err := s.Verify(fuzzIdentityID, fedNow, 2*time.Minute); !errors.Is(err, ErrFederation) {
				t.Fatalf("a changed body verified: %v", err)
			}
		}
	})
}

// FuzzFederationExport: what another community's bootstrap answers is
// refused with ErrFederation, whole or entry by entry, and every entry
// that verifies is a valid public listing by its broadcaster. Seeds are in
// testdata/fuzz/FuzzFederationExport/.
func FuzzFederationExport(f *testing.F) {
	_, exports := federationSeeds(f)
	for _, b := range exports {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := DecodeFederationExport(bytes.NewReader(data), 1<<20)
		if err != nil {
			if !errors.Is(err, ErrFederation) {
				t.Fatalf("error %v is not ErrFederation", err)
			}
			return
		}
		if x.Version != FederationVersion || !ValidFingerprint(x.Bootstrap) {
			t.Fatalf("accepted an export of version %d by %q", x.Version, x.Bootstrap)
		}
		for i := range x.Broadcasts {
			s := &x.Broadcasts[i]
			v, err := s.Verify(x.Bootstrap, fedNow, 2*time.Minute)
			if err != nil {
				if !errors.Is(err, ErrFederation) {
					t.Fatalf("error %v is not ErrFederation", err)
				}
				continue
			}
			checkVerified(t, s, v)
		}
	})
}

// TestFederationExportSize: an export over the bound is refused whole,
// and one just at it is read.
func TestFederationExportSize(t *testing.T) {
	_, exports := federationSeeds(t)
	good := exports[0]
	if _, err := DecodeFederationExport(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
	if _, err := DecodeFederationExport(bytes.NewReader(good), int64(len(good)-1)); !errors.Is(err, ErrFederation) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("over the bound: %v", err)
	}
	x, err := DecodeFederationExport(bytes.NewReader(good), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	v, err := x.Broadcasts[0].Verify(x.Bootstrap, fedNow, 2*time.Minute)
	if err != nil || v.Update.Title != "Harbour at dawn" || v.Broadcaster != fedBroadcasterID {
		t.Fatalf("the good seed: %+v, %v", v, err)
	}
	for i, want := range []string{"private", "version 2", "fingerprint"} {
		var err error
		if i == 0 {
			x, _ := DecodeFederationExport(bytes.NewReader(exports[1]), 1<<20)
			_, err = x.Broadcasts[0].Verify(x.Bootstrap, fedNow, 2*time.Minute)
		} else {
			_, err = DecodeFederationExport(bytes.NewReader(exports[i+2]), 1<<20)
		}
		if !errors.Is(err, ErrFederation) || !strings.Contains(err.Error(), want) {
			t.Errorf("seed %d: want %q, got %v", i, want, err)
		}
	}
}

// BenchmarkSignedListingVerify: what checking one federated entry costs
// (the good seed): a reader checks each new entry once.
func BenchmarkSignedListingVerify(b *testing.B) {
	bodies, _ := federationSeeds(b)
	s := signListing(b, bodies[0])
	for b.Loop() {
		if _, err := s.Verify(fuzzIdentityID, fedNow, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
