package chat

import (
	"fmt"

	"github.com/peerscope/peerscope/identity"
)

// Attestations live in package identity, which every node (and the
// bootstrap that signs them) shares; chat keeps these names so that its
// API reads as before.

// An Attestation binds a libp2p peer to an account; see identity.Attestation.
type Attestation = identity.Attestation

// Identity is what an attestation says about its holder; see
// identity.Identity.
type Identity = identity.Identity

// ParseAttestation decodes a signed attestation and checks its fields (not
// its signature); its errors wrap ErrMalformed.
func ParseAttestation(b []byte) (*Attestation, error) {
	a, err := identity.ParseAttestation(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return a, nil
}

// maxAvatarLen bounds the longest identity field the chat log carries.
const maxAvatarLen = identity.MaxAvatarLen
