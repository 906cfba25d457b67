package api

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peerscope/peerscope/identity"
)

// A bootstrap has an identity key (ed25519, kept in its data directory and
// never rotated) beside its attestation keys (which rotate). Its
// fingerprint is the bootstrap's ID: signed requests name it, so a request
// is good at one bootstrap only; a node may pin it (Client.Pin), so that
// keys fetched over plain HTTP are believed only if that key signed them.
// The identity key signs a TrustStatement: the attestation keys and the
// revocations, the bootstrap's whole say on whom to believe.

// FingerprintLen is the length of a fingerprint: 32 hex digits.
const FingerprintLen = 32

// Fingerprint is a bootstrap's ID: the hex of the first 16 bytes of the
// SHA-256 of its identity key.
func Fingerprint(identityKey ed25519.PublicKey) string {
	sum := sha256.Sum256(identityKey)
	return hex.EncodeToString(sum[:FingerprintLen/2])
}

// ValidFingerprint reports whether s is written as a fingerprint is.
func ValidFingerprint(s string) bool {
	return len(s) == FingerprintLen && strings.Trim(s, "0123456789abcdef") == ""
}

// trustDomain separates the identity key's trust statements from anything
// else it could sign.
const trustDomain = "peerscope/bootstrap-trust/1\x00"

// TrustStatement is what a bootstrap's identity key signs: its attestation
// keys and revocations, at an instant.
type TrustStatement struct {
	Bootstrap string          `json:"bootstrap"` // its fingerprint
	Issued    time.Time       `json:"issued"`
	Keys      identity.KeySet `json:"keys"`
}

// Signed is a statement as its signer signed it: the JSON body's bytes and
// the signature over a domain and them.
type Signed struct {
	Body      []byte `json:"body"`
	Signature []byte `json:"signature"`
}

// MaxTrustStatement bounds a trust statement's body.
const MaxTrustStatement = 8 << 20

// SignTrust signs a trust statement with a bootstrap's identity key.
func SignTrust(key ed25519.PrivateKey, st TrustStatement) (*Signed, error) {
	body, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return &Signed{Body: body, Signature: ed25519.Sign(key, append([]byte(trustDomain), body...))}, nil
}

// OpenTrust checks a signed trust statement against the identity key of
// bootstrap id and returns it: the signature, the body's strict JSON, the
// bootstrap it names, and every key and revocation (KeySet.Check).
func OpenTrust(s *Signed, identityKey ed25519.PublicKey, id string) (TrustStatement, error) {
	var st TrustStatement
	switch {
	case s == nil:
		return st, fmt.Errorf("%w: no signed trust statement", ErrUntrusted)
	case len(s.Body) > MaxTrustStatement:
		return st, fmt.Errorf("%w: a trust statement of %d bytes", ErrBadRequest, len(s.Body))
	case len(identityKey) != ed25519.PublicKeySize || Fingerprint(identityKey) != id:
		return st, fmt.Errorf("%w: the identity key is not bootstrap %s's", ErrUntrusted, clip(id, 40))
	case !ed25519.Verify(identityKey, append([]byte(trustDomain), s.Body...), s.Signature):
		return st, fmt.Errorf("%w: the trust statement's signature does not verify", ErrUntrusted)
	}
	dec := json.NewDecoder(bytes.NewReader(s.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%w: trust statement: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return st, fmt.Errorf("%w: trust statement: data after the object", ErrBadRequest)
	}
	if st.Bootstrap != id {
		return st, fmt.Errorf("%w: the statement is bootstrap %s's, not %s's", ErrUntrusted, clip(st.Bootstrap, 40), clip(id, 40))
	}
	if err := st.Keys.Check(); err != nil {
		return st, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, ok := st.Keys.Current(); !ok {
		return st, fmt.Errorf("%w: the statement has no current key", ErrBadRequest)
	}
	return st, nil
}
