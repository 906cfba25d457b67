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
// first.
type KeySet struct {
	Keys []Key `json:"keys"`
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
		for _, k := range s.Keys {
			k.Public = bytes.Clone(k.Public)
			t.keys = append(t.keys, k)
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
	}
	for _, k := range keys {
		out.keys = append(out.keys, Key{Public: bytes.Clone(k)})
	}
	return out
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
// at most MaxLifetime and that it has not expired at now.
func (t *TrustSet) Verify(a *Attestation, p peer.ID, now time.Time) error {
	if err := t.Trusts(a.Issuer, a.Issued); err != nil {
		return err
	}
	return a.verifyRest(p, now)
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
