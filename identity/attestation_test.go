package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/internal/testutil"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testPeer(seed byte) peer.ID {
	_, id := testutil.SeededPeer(seed)
	return id
}

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

var (
	alice    = testPeer(2)
	bob      = testPeer(3)
	bootKey  = testKey(0xb0)
	newKey   = testKey(0xb1)
	rogueKey = testKey(0xee)
)

// signedAt returns a signed attestation of p issued at issued, valid for a
// day.
func signedAt(t testing.TB, p peer.ID, key ed25519.PrivateKey, issued time.Time) *Attestation {
	t.Helper()
	a := &Attestation{
		Provider: "twitter", Account: "1234", Handle: "@alice", Name: "Alice Example",
		Avatar: "https://example.com/a.png", Peer: p, Issued: issued, Expires: issued.Add(24 * time.Hour),
	}
	if err := a.Sign(key); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAttestationRoundTrip(t *testing.T) {
	a := signedAt(t, alice, bootKey, t0)
	b := a.Marshal()
	got, err := ParseAttestation(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity() != a.Identity() || got.Peer != alice || !got.Issued.Equal(t0) || !got.Expires.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("round trip changed the attestation: %+v", got)
	}
	if got.Identity().AccountKey() != "twitter:1234" {
		t.Fatalf("account key %q", got.Identity().AccountKey())
	}
	if err := got.Verify([]ed25519.PublicKey{pub(bootKey)}, alice, t0.Add(time.Hour)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	for name, a := range map[string]*Attestation{
		"no provider":    {Account: "1", Peer: alice, Expires: t0},
		"upper provider": {Provider: "Twitter", Account: "1", Peer: alice, Expires: t0},
		"no account":     {Provider: "x", Peer: alice, Expires: t0},
		"control name":   {Provider: "x", Account: "1", Name: "a\nb", Peer: alice, Expires: t0},
		"http avatar":    {Provider: "x", Account: "1", Avatar: "http://a/b.png", Peer: alice, Expires: t0},
		"no peer":        {Provider: "x", Account: "1", Expires: t0},
		"no expiry":      {Provider: "x", Account: "1", Peer: alice},
		"expires first":  {Provider: "x", Account: "1", Peer: alice, Issued: t0, Expires: t0},
		"long handle":    {Provider: "x", Account: "1", Handle: string(bytes.Repeat([]byte("h"), MaxHandleLen+1)), Peer: alice, Expires: t0},
	} {
		if err := a.Sign(bootKey); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Sign = %v, want ErrMalformed", name, err)
		}
	}
	if err := (&Attestation{}).Sign(ed25519.PrivateKey{1, 2}); !errors.Is(err, ErrBadKey) {
		t.Errorf("short key: %v", err)
	}
}

// TestTrustSet is the table of who believes what: expired, forged,
// wrong-peer and untrusted attestations, and a key rotation.
func TestTrustSet(t *testing.T) {
	rotation := t0.Add(10 * 24 * time.Hour)
	rotated := KeySet{Keys: []Key{
		{Public: pub(newKey), From: rotation},
		{Public: pub(bootKey), Until: rotation},
	}}
	forged := signedAt(t, alice, bootKey, t0)
	forged.Handle = "@mallory" // changed after signing: body and fields disagree
	forgedBytes := func() []byte {
		// The body re-encoded with another handle, the old signature kept.
		b, err := forged.marshalBody()
		if err != nil {
			t.Fatal(err)
		}
		return pbwire.AppendBytes(pbwire.AppendBytes(nil, 1, b), 2, forged.Signature)
	}()
	cases := []struct {
		name  string
		trust []KeySet
		att   []byte
		peer  peer.ID
		now   time.Time
		want  error
	}{
		{"valid", []KeySet{{Keys: []Key{{Public: pub(bootKey)}}}}, signedAt(t, alice, bootKey, t0).Marshal(), alice, t0.Add(time.Hour), nil},
		{"expired", []KeySet{{Keys: []Key{{Public: pub(bootKey)}}}}, signedAt(t, alice, bootKey, t0).Marshal(), alice, t0.Add(24 * time.Hour), ErrExpired},
		{"wrong peer", []KeySet{{Keys: []Key{{Public: pub(bootKey)}}}}, signedAt(t, alice, bootKey, t0).Marshal(), bob, t0.Add(time.Hour), ErrWrongPeer},
		{"untrusted key", []KeySet{{Keys: []Key{{Public: pub(bootKey)}}}}, signedAt(t, alice, rogueKey, t0).Marshal(), alice, t0.Add(time.Hour), ErrUntrusted},
		{"forged body", []KeySet{{Keys: []Key{{Public: pub(bootKey)}}}}, forgedBytes, alice, t0.Add(time.Hour), ErrBadSignature},
		{"no trust", nil, signedAt(t, alice, bootKey, t0).Marshal(), alice, t0.Add(time.Hour), ErrUntrusted},
		{"second of two bootstraps", []KeySet{{Keys: []Key{{Public: pub(rogueKey)}}}, {Keys: []Key{{Public: pub(bootKey)}}}},
			signedAt(t, alice, bootKey, t0).Marshal(), alice, t0.Add(time.Hour), nil},
		{"old key before rotation", []KeySet{rotated}, signedAt(t, alice, bootKey, rotation.Add(-time.Hour)).Marshal(), alice, rotation.Add(time.Hour), nil},
		{"old key after rotation", []KeySet{rotated}, signedAt(t, alice, bootKey, rotation).Marshal(), alice, rotation.Add(time.Hour), ErrUntrusted},
		{"new key after rotation", []KeySet{rotated}, signedAt(t, alice, newKey, rotation).Marshal(), alice, rotation.Add(time.Hour), nil},
		{"new key before its start", []KeySet{rotated}, signedAt(t, alice, newKey, rotation.Add(-time.Second)).Marshal(), alice, rotation.Add(time.Hour), ErrUntrusted},
		{"revoked in one set", []KeySet{{Keys: []Key{{Public: pub(bootKey)}}}, {Keys: []Key{{Public: pub(bootKey), Revoked: true}}}},
			signedAt(t, alice, bootKey, t0).Marshal(), alice, t0.Add(time.Hour), ErrUntrusted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, err := NewTrustSet(c.trust...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.VerifyBytes(c.att, c.peer, c.now)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("VerifyBytes = %v, want %v", err, c.want)
			}
		})
	}
}

func TestKeySet(t *testing.T) {
	if err := (KeySet{Keys: []Key{{Public: ed25519.PublicKey{1}}}}).Check(); !errors.Is(err, ErrBadKey) {
		t.Errorf("short key: %v", err)
	}
	if err := (KeySet{Keys: []Key{{Public: pub(bootKey), From: t0, Until: t0}}}).Check(); !errors.Is(err, ErrBadKey) {
		t.Errorf("empty window: %v", err)
	}
	s := KeySet{Keys: []Key{{Public: pub(bootKey), Until: t0}, {Public: pub(newKey), From: t0}}}
	cur, ok := s.Current()
	if !ok || !bytes.Equal(cur.Public, pub(newKey)) {
		t.Errorf("Current = %v, %v", cur, ok)
	}
	ts, err := NewTrustSet(s, KeySet{Keys: []Key{{Public: pub(newKey)}, {Public: pub(rogueKey), Revoked: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.PublicKeys(); len(got) != 2 || !bytes.Equal(got[0], pub(bootKey)) || !bytes.Equal(got[1], pub(newKey)) {
		t.Errorf("PublicKeys = %x", got)
	}
	var none *TrustSet
	if none.Len() != 0 || none.PublicKeys() != nil || !errors.Is(none.Trusts(pub(bootKey), t0), ErrUntrusted) {
		t.Error("a nil trust set trusts something")
	}
}

// TestEncodingKept: the generated code writes the bytes the hand-written
// codec it replaced wrote (so what was signed before still verifies, and a
// new signature is over the same body), and an attestation encoded by that
// codec (the corpus's seed-alice) parses, verifies, and marshals back to
// its very bytes.
func TestEncodingKept(t *testing.T) {
	a := signedAt(t, alice, bootKey, t0)
	body := pbwire.AppendString(nil, 1, a.Provider)
	body = pbwire.AppendString(body, 2, a.Account)
	body = pbwire.AppendString(body, 3, a.Handle)
	body = pbwire.AppendString(body, 4, a.Name)
	body = pbwire.AppendString(body, 5, a.Avatar)
	body = pbwire.AppendBytes(body, 6, []byte(a.Peer))
	body = pbwire.AppendVarint(body, 7, uint64(a.Issued.UnixNano()))
	body = pbwire.AppendVarint(body, 8, uint64(a.Expires.UnixNano()))
	body = pbwire.AppendBytes(body, 9, a.Issuer)
	want := pbwire.AppendBytes(pbwire.AppendBytes(nil, 1, body), 2, a.Signature)
	if !bytes.Equal(a.Marshal(), want) {
		t.Fatalf("the generated code writes\n%x\nthe hand codec wrote\n%x", a.Marshal(), want)
	}

	seed, err := os.ReadFile("testdata/fuzz/FuzzAttestation/seed-alice")
	if err != nil {
		t.Fatal(err)
	}
	_, lit, _ := strings.Cut(string(seed), "\n")
	lit = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(lit), "[]byte("), ")")
	text, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte(text)
	got, err := ParseAttestation(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.VerifySignature(); err != nil {
		t.Fatalf("an attestation signed before the change: %v", err)
	}
	if got.Handle != "@alice" || !bytes.Equal(got.Marshal(), old) {
		t.Fatalf("the old attestation changed: %+v", got)
	}
}

// TestMistypedFieldRefused: a known field sent with another wire type is
// refused, in the envelope and in the body, as the hand codec refused it.
func TestMistypedFieldRefused(t *testing.T) {
	a := signedAt(t, alice, bootKey, t0)
	body := append(protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1), a.body...)
	for name, b := range map[string][]byte{
		"body field 3 as a varint": pbwire.AppendBytes(pbwire.AppendBytes(nil, 1, body), 2, a.Signature),
		"signature as a varint":    append(pbwire.AppendBytes(nil, 1, a.body), protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)...),
	} {
		if _, err := ParseAttestation(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	future := pbwire.AppendString(append([]byte(nil), a.body...), 20, "a field from a later version")
	if got, err := ParseAttestation(pbwire.AppendBytes(pbwire.AppendBytes(nil, 1, future), 2, a.Signature)); err != nil || got.Handle != "@alice" {
		t.Errorf("an unknown field: %v", err)
	}
}

func attestationSeeds(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"alice":      signedAt(t, alice, bootKey, t0).Marshal(),
		"rogue":      signedAt(t, bob, rogueKey, t0).Marshal(),
		"empty":      nil,
		"unsigned":   pbwire.AppendBytes(nil, 1, []byte{0x0a, 0x01, 'x'}),
		"bad-sig":    append(pbwire.AppendBytes(nil, 1, []byte{0x0a, 0x01, 'x'}), pbwire.AppendBytes(nil, 2, make([]byte, 64))...),
		"wrong-type": append(protowire.AppendTag(nil, 1, protowire.VarintType), 1),
	}
}

func FuzzAttestation(f *testing.F) {
	for _, b := range attestationSeeds(f) {
		f.Add(b)
	}
	ts, err := Trust(pub(bootKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAttestation(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		_ = ts.Verify(a, a.Peer, t0)
		_ = a.VerifySignature()
		b := a.Marshal()
		a2, err := ParseAttestation(b)
		if err != nil {
			t.Fatalf("re-encoded attestation does not parse: %v", err)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("re-encoding changed the attestation\n got %+v\nwant %+v", a2, a)
		}
	})
}
