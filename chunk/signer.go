package chunk

import (
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// Signer signs chunks with a broadcaster's ed25519 key.
type Signer struct{ key ed25519.PrivateKey }

// NewSigner returns a signer for an ed25519 libp2p private key (a
// broadcaster signs with its host key, whose peer ID inlines the public key,
// so a broadcast ID is all a viewer needs to verify).
func NewSigner(k crypto.PrivKey) (*Signer, error) {
	if k == nil || k.Type() != crypto.Ed25519 {
		return nil, ErrNotEd25519
	}
	raw, err := k.Raw() // seed ‖ public key, the 64-byte ed25519 private key
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: raw key of %d bytes", ErrNotEd25519, len(raw))
	}
	return &Signer{key: ed25519.PrivateKey(raw)}, nil
}

// Sign signs the chunk (and encodes it once).
func (s *Signer) Sign(c *Chunk) { c.Sign(s.key) }

// PublicKey returns the signer's public key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }
