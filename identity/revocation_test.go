package identity

import (
	"errors"
	"testing"
	"time"
)

// TestRevocations: a bootstrap's revocations withdraw one attestation, a
// peer's or an account's issued before an instant; they apply to the
// attestations of that bootstrap's keys only.
func TestRevocations(t *testing.T) {
	a1 := signedAt(t, alice, bootKey, t0)
	a2 := signedAt(t, alice, bootKey, t0.Add(time.Hour))
	b1 := signedAt(t, bob, bootKey, t0)
	r1 := signedAt(t, alice, rogueKey, t0) // another bootstrap's
	now := t0.Add(2 * time.Hour)
	cases := []struct {
		name string
		revs []Revocation
		want map[*Attestation]bool // revoked
	}{
		{"none", nil, map[*Attestation]bool{a1: false, a2: false, b1: false, r1: false}},
		{"one attestation", []Revocation{{Attestation: a1.ID()}}, map[*Attestation]bool{a1: true, a2: false, b1: false}},
		{"a peer before", []Revocation{{Peer: alice.String(), Before: t0.Add(time.Minute)}}, map[*Attestation]bool{a1: true, a2: false, b1: false, r1: false}},
		{"an account before", []Revocation{{Account: "twitter:1234", Before: t0.Add(2 * time.Hour)}}, map[*Attestation]bool{a1: true, a2: true, b1: true, r1: false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, err := NewTrustSet(KeySet{Keys: []Key{{Public: pub(bootKey)}}, Revocations: c.revs}, KeySet{Keys: []Key{{Public: pub(rogueKey)}}})
			if err != nil {
				t.Fatal(err)
			}
			for a, revoked := range c.want {
				err := ts.Verify(a, a.Peer, now)
				if revoked && (!errors.Is(err, ErrRevoked) || !errors.Is(err, ErrUntrusted)) || !revoked && err != nil {
					t.Errorf("%s issued %s: %v, revoked %v", a.Peer, a.Issued.Format(time.Kitchen), err, revoked)
				}
			}
			if ts.With(pub(newKey)).Verify(a1, alice, now) != ts.Verify(a1, alice, now) {
				t.Error("With dropped the revocations")
			}
		})
	}
	for _, bad := range []Revocation{{}, {Attestation: "xyz"}, {Peer: alice.String()}, {Account: "twitter:1"},
		{Peer: "not a peer", Before: t0}, {Attestation: a1.ID(), Peer: alice.String(), Before: t0}, {Account: "nocolon", Before: t0}} {
		if _, err := NewTrustSet(KeySet{Keys: []Key{{Public: pub(bootKey)}}, Revocations: []Revocation{bad}}); !errors.Is(err, ErrMalformed) {
			t.Errorf("revocation %+v: %v", bad, err)
		}
	}
}
