package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A Revocation withdraws attestations its bootstrap issued before they
// expire: one attestation (a session signed out, a peer that should not
// hold it), every attestation of a peer issued before an instant (sign-out
// of a node), or every attestation of an account issued before an instant
// (signing out everywhere, say after a phishing). A bootstrap publishes its
// revocations beside its keys (KeySet.Revocations); a trust set applies
// them to the attestations of that key set's keys only, so no bootstrap
// revokes another's.
type Revocation struct {
	// Attestation is one attestation's ID (Attestation.ID).
	Attestation string `json:"attestation,omitempty"`
	// Peer, with Before: every attestation of this peer (its text form).
	Peer string `json:"peer,omitempty"`
	// Account, with Before: every attestation of this account
	// ("provider:account").
	Account string `json:"account,omitempty"`
	// Before bounds Peer and Account: attestations issued before it.
	Before time.Time `json:"before,omitzero"`
	// Until is when everything the entry revokes has expired: the entry
	// may be forgotten then.
	Until time.Time `json:"until,omitzero"`
}

// Limits of a revocation list, so that a hostile one costs little.
const (
	MaxRevocations     = 100_000
	attestationIDBytes = 16
)

// ID names an attestation in revocations: the hex of the first 16 bytes of
// SHA-256 of its signed body. Two attestations differ in their body (the
// issue time at least), so the ID names one.
func (a *Attestation) ID() string {
	sum := sha256.Sum256(a.body)
	return hex.EncodeToString(sum[:attestationIDBytes])
}

// Check refuses an entry that names nothing, or more than one kind of
// thing, or a Peer or Account without Before.
func (r Revocation) Check() error {
	n := 0
	for _, s := range []string{r.Attestation, r.Peer, r.Account} {
		if s != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return fmt.Errorf("%w: a revocation names one attestation, peer or account", ErrMalformed)
	case r.Attestation != "" && (len(r.Attestation) != 2*attestationIDBytes || strings.Trim(r.Attestation, "0123456789abcdef") != ""):
		return fmt.Errorf("%w: attestation ID %q", ErrMalformed, clip(r.Attestation))
	case r.Peer != "" && r.Before.IsZero(), r.Account != "" && r.Before.IsZero():
		return fmt.Errorf("%w: a revocation of a peer or an account needs Before", ErrMalformed)
	case r.Peer != "" && !validPeerText(r.Peer):
		return fmt.Errorf("%w: peer %q", ErrMalformed, clip(r.Peer))
	case r.Account != "" && (len(r.Account) > MaxProviderLen+1+MaxAccountLen || !ValidText(r.Account) || !strings.Contains(r.Account, ":")):
		return fmt.Errorf("%w: account %q", ErrMalformed, clip(r.Account))
	}
	return nil
}

func validPeerText(s string) bool {
	if len(s) > 2*MaxPeerIDLen {
		return false
	}
	p, err := peer.Decode(s)
	return err == nil && p.String() == s
}

// Revokes reports whether r withdraws a (whatever its issuer: a trust set
// asks only the revocations of a's issuer's key set).
func (r Revocation) Revokes(a *Attestation) bool {
	switch {
	case r.Attestation != "":
		return r.Attestation == a.ID()
	case r.Peer != "":
		return r.Peer == a.Peer.String() && a.Issued.Before(r.Before)
	case r.Account != "":
		return r.Account == a.Identity().AccountKey() && a.Issued.Before(r.Before)
	}
	return false
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
