package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A Key is one signing key of a bootstrap and the window in which it
// signed. A bootstrap publishes its keys (its KeySet) so that nodes can
// follow a rotation: the new key gets From = the switch-over, the old one
// Until = the same instant, and attestations the old key issued before
// then stay believed until they expire.
type Key struct {
	Public ed25519.PublicKey `json:"public"`
	// From is the first instant the key signs; zero means from the start.
	From time.Time `json:"from,omitzero"`
	// Until is when the key was retired: an attestation it says it issued
	// at or after Until is refused. Zero for the current key.
	Until time.Time `json:"until,omitzero"`
	// Revoked marks a key that must no longer be believed at all (it
	// leaked: whoever holds it could backdate attestations into its
	// window).
	Revoked bool `json:"revoked,omitempty"`
}

// validAt reports whether the key was signing at t.
func (k Key) validAt(t time.Time) bool {
	return !k.Revoked && !t.Before(k.From) && (k.Until.IsZero() || t.Before(k.Until))
}

// A KeySet is what one bootstrap publishes: its keys, the current one
// first, and the attestations of those keys it revoked.
type KeySet struct {
	Keys []Key `json:"keys"`
	// Revocations withdraw attestations of these keys (and of no others)
	// before they expire.
	Revocations []Revocation `json:"revocations,omitempty"`
}

// Current returns the key the bootstrap signs with now (the first key
// without Until or revocation), or false.
func (s KeySet) Current() (Key, bool) {
	for _, k := range s.Keys {
		if k.Until.IsZero() && !k.Revoked {
			return k, true
		}
	}
	return Key{}, false
}

// Check refuses a key set with a key of the wrong size or an empty or
// inverted window.
func (s KeySet) Check() error {
	if len(s.Revocations) > MaxRevocations {
		return fmt.Errorf("%w: %d revocations", ErrMalformed, len(s.Revocations))
	}
	for _, r := range s.Revocations {
		if err := r.Check(); err != nil {
			return err
		}
	}
	for i, k := range s.Keys {
		if len(k.Public) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: key %d has %d bytes", ErrBadKey, i, len(k.Public))
		}
		if !k.Until.IsZero() && !k.Until.After(k.From) {
			return fmt.Errorf("%w: key %d valid from %s until %s", ErrBadKey, i, k.From, k.Until)
		}
	}
	return nil
}

// A TrustSet is the keys a node believes attestations from: the union of
// the key sets of the bootstraps it trusts, and keys given directly. It is
// immutable; a node that refreshes its bootstraps' key sets builds a new
// one.
type TrustSet struct {
	keys []Key
	revs []scopedRevocation
}

// scopedRevocation is a revocation with the keys of the set that published
// it: it applies to their attestations only.
type scopedRevocation struct {
	keys []ed25519.PublicKey
	r    Revocation
}

// NewTrustSet builds a trust set from bootstraps' key sets. A key that
// appears in several sets is believed in the union of its windows, unless
// any set revokes it.
func NewTrustSet(sets ...KeySet) (*TrustSet, error) {
	t := &TrustSet{}
	for _, s := range sets {
		if err := s.Check(); err != nil {
			return nil, err
		}
		var scope []ed25519.PublicKey
		for _, k := range s.Keys {
			k.Public = bytes.Clone(k.Public)
			t.keys = append(t.keys, k)
			scope = append(scope, k.Public)
		}
		for _, r := range s.Revocations {
			t.revs = append(t.revs, scopedRevocation{keys: scope, r: r})
		}
	}
	return t, nil
}

// Trust builds a trust set of keys believed whenever they signed: the
// simplest configuration, a node given its bootstraps' public keys.
func Trust(keys ...ed25519.PublicKey) (*TrustSet, error) {
	s := KeySet{}
	for _, k := range keys {
		s.Keys = append(s.Keys, Key{Public: k})
	}
	return NewTrustSet(s)
}

// With returns a copy of the set that also believes keys, whenever they
// signed (as Trust does). t may be nil.
func (t *TrustSet) With(keys ...ed25519.PublicKey) *TrustSet {
	out := &TrustSet{}
	if t != nil {
		out.keys = append(out.keys, t.keys...)
		out.revs = t.revs
	}
	for _, k := range keys {
		out.keys = append(out.keys, Key{Public: bytes.Clone(k)})
	}
	return out
}

// Revocations returns the number of revocations the set holds.
func (t *TrustSet) Revocations() int {
	if t == nil {
		return 0
	}
	return len(t.revs)
}

// revokedAttestation reports whether a bootstrap whose keys include a's
// issuer revoked a.
func (t *TrustSet) revokedAttestation(a *Attestation) bool {
	for _, s := range t.revs {
		for _, k := range s.keys {
			if bytes.Equal(k, a.Issuer) && s.r.Revokes(a) {
				return true
			}
		}
	}
	return false
}

// Len returns the number of keys in the set (revoked ones included).
func (t *TrustSet) Len() int {
	if t == nil {
		return 0
	}
	return len(t.keys)
}

// PublicKeys returns the distinct keys that are not revoked: the keys an
// attestation that is still valid may be signed by. (For code that takes
// a plain key list; it loses the windows.)
func (t *TrustSet) PublicKeys() []ed25519.PublicKey {
	if t == nil {
		return nil
	}
	var out []ed25519.PublicKey
	for _, k := range t.keys {
		if t.revoked(k.Public) {
			continue
		}
		dup := false
		for _, o := range out {
			if bytes.Equal(o, k.Public) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, bytes.Clone(k.Public))
		}
	}
	return out
}

func (t *TrustSet) revoked(pub ed25519.PublicKey) bool {
	for _, k := range t.keys {
		if k.Revoked && bytes.Equal(k.Public, pub) {
			return true
		}
	}
	return false
}

// Trusts reports why an attestation issued by pub at issued would not be
// believed, or nil if it would.
func (t *TrustSet) Trusts(pub ed25519.PublicKey, issued time.Time) error {
	if t == nil {
		return ErrUntrusted
	}
	known := false
	for _, k := range t.keys {
		if !bytes.Equal(k.Public, pub) {
			continue
		}
		known = true
		if k.Revoked {
			return fmt.Errorf("%w: key revoked", ErrUntrusted)
		}
	}
	if !known {
		return ErrUntrusted
	}
	for _, k := range t.keys {
		if bytes.Equal(k.Public, pub) && k.validAt(issued) {
			return nil
		}
	}
	return fmt.Errorf("%w: issued %s, outside the key's validity", ErrUntrusted, issued.UTC().Format(time.RFC3339))
}

// Verify checks that the attestation was issued by a trusted key while it
// was valid, that its signature holds, that it names peer p, that it lives
// at most MaxLifetime, that it has not expired at now and that the
// bootstrap of its key did not revoke it (ErrRevoked).
func (t *TrustSet) Verify(a *Attestation, p peer.ID, now time.Time) error {
	if err := t.Trusts(a.Issuer, a.Issued); err != nil {
		return err
	}
	if err := a.verifyRest(p, now); err != nil {
		return err
	}
	if t.revokedAttestation(a) {
		return ErrRevoked
	}
	return nil
}

// VerifyBytes parses an attestation's wire form and verifies it as Verify
// does.
func (t *TrustSet) VerifyBytes(b []byte, p peer.ID, now time.Time) (*Attestation, error) {
	a, err := ParseAttestation(b)
	if err != nil {
		return nil, err
	}
	if err := t.Verify(a, p, now); err != nil {
		return nil, err
	}
	return a, nil
}
