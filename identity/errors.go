package identity

import (
	"errors"
	"fmt"
)

// Errors of attestations and trust.
var (
	// ErrMalformed is returned for bytes that are not a valid attestation
	// or key set, and by Sign for fields outside the limits.
	ErrMalformed = errors.New("identity: malformed attestation")
	// ErrTooLarge is returned for an attestation over MaxAttestationSize.
	ErrTooLarge = errors.New("identity: attestation too large")
	// ErrBadSignature is returned for a signature that does not verify.
	ErrBadSignature = errors.New("identity: bad signature")
	// ErrUntrusted is returned for an attestation signed by a key that is
	// not among the trusted ones (or was not valid when it signed, or is
	// revoked).
	ErrUntrusted = errors.New("identity: attestation from an untrusted key")
	// ErrExpired is returned for an attestation past its expiry.
	ErrExpired = errors.New("identity: attestation expired")
	// ErrWrongPeer is returned for an attestation presented by a peer it
	// does not name.
	ErrWrongPeer = errors.New("identity: attestation names another peer")
	// ErrBadKey is returned for a signing key that is not an ed25519
	// private key.
	ErrBadKey = errors.New("identity: bad signing key")
	// ErrLifetime is returned for an attestation that claims to live
	// longer than MaxLifetime (what a leaked retired key would mint). It
	// wraps ErrUntrusted: the holder is anonymous, not a forger.
	ErrLifetime = fmt.Errorf("%w: lives longer than the maximum lifetime", ErrUntrusted)
	// ErrRevoked is returned for an attestation its bootstrap revoked
	// (a sign-out, a session ended, one withdrawn by the operator). It
	// wraps ErrUntrusted: the holder is anonymous.
	ErrRevoked = fmt.Errorf("%w: revoked by its bootstrap", ErrUntrusted)
)
