package identity

import (
	"errors"
	"testing"
	"time"
)

// TestBackdatedFromRetiredKey: a key retired long ago leaks. Whoever holds
// it can sign an attestation dated inside the key's window (so the window
// check passes) that expires years later. Verifiers refuse any attestation
// that claims to live longer than MaxLifetime, so what a retired key can
// still mint expires at most MaxLifetime after its retirement; one dated
// inside the window with an honest lifetime has long expired.
func TestBackdatedFromRetiredKey(t *testing.T) {
	retired := t0.Add(10 * 24 * time.Hour)
	set := KeySet{Keys: []Key{{Public: pub(newKey), From: retired}, {Public: pub(bootKey), Until: retired}}}
	trust, err := NewTrustSet(set)
	if err != nil {
		t.Fatal(err)
	}
	now := retired.Add(90 * 24 * time.Hour)
	mint := func(issued, expires time.Time) []byte {
		a := &Attestation{Provider: "twitter", Account: "1234", Handle: "@alice", Peer: alice, Issued: issued, Expires: expires}
		if err := a.Sign(bootKey); err != nil {
			t.Fatal(err)
		}
		return a.Marshal()
	}
	backdated := mint(retired.Add(-time.Hour), now.Add(365*24*time.Hour))
	if _, err := trust.VerifyBytes(backdated, alice, now); !errors.Is(err, ErrLifetime) || !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a backdated attestation living a year and more from a retired key: %v, want ErrLifetime", err)
	}
	honest := mint(retired.Add(-time.Hour), retired.Add(-time.Hour).Add(MaxLifetime))
	if _, err := trust.VerifyBytes(honest, alice, now); !errors.Is(err, ErrExpired) {
		t.Fatalf("backdated with an honest lifetime: %v, want ErrExpired", err)
	}
	// The limit itself: MaxLifetime is accepted, a nanosecond more is not.
	fresh := newKey
	for _, c := range []struct {
		life time.Duration
		ok   bool
	}{{MaxLifetime, true}, {MaxLifetime + time.Nanosecond, false}} {
		a := &Attestation{Provider: "twitter", Account: "1234", Peer: alice, Issued: now, Expires: now.Add(c.life)}
		if err := a.Sign(fresh); err != nil {
			t.Fatal(err)
		}
		_, err := trust.VerifyBytes(a.Marshal(), alice, now.Add(time.Hour))
		if (err == nil) != c.ok {
			t.Fatalf("lifetime %s: %v", c.life, err)
		}
		// A plain key list (Verify) holds the same limit.
		if err := a.Verify(trust.PublicKeys(), alice, now.Add(time.Hour)); (err == nil) != c.ok {
			t.Fatalf("lifetime %s, Verify: %v", c.life, err)
		}
	}
}
