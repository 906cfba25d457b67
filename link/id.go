package link

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A broadcast ID is "<broadcaster peer ID>.<nonce>": the broadcaster's
// libp2p peer ID in its base58 text form ("12D3KooW…", which inlines the
// ed25519 public key that signs the chunks) and a random nonce, so that two
// broadcasts by one identity are never confused (the chunks' signatures
// cover the ID: none of one broadcast can be replayed into another).

// maxNonceLen leaves room to lengthen the nonce later.
const maxNonceLen = 32

// Encoding is base32 without padding, in lower case: what a nonce is
// written in (and, in node, a stream key).
var Encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewBroadcastID returns a fresh broadcast ID for a broadcaster.
func NewBroadcastID(broadcaster peer.ID) string {
	var b [5]byte // 8 base32 characters, 40 bits
	_, _ = rand.Read(b[:])
	return broadcaster.String() + "." + Encoding.EncodeToString(b[:])
}

// BroadcasterOf returns the peer ID of a broadcast's broadcaster and its
// public key, from the broadcast ID alone.
func BroadcasterOf(id string) (peer.ID, ed25519.PublicKey, error) {
	dot := strings.LastIndexByte(id, '.')
	if dot < 0 {
		return "", nil, fmt.Errorf("%w: broadcast ID %q has no '.' between the broadcaster and the nonce", ErrMalformed, clip(id))
	}
	pidText, nonce := id[:dot], id[dot+1:]
	if len(nonce) == 0 || len(nonce) > maxNonceLen || strings.Trim(nonce, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return "", nil, fmt.Errorf("%w: broadcast ID %q: the nonce must be 1 to %d lower-case letters and digits", ErrMalformed, clip(id), maxNonceLen)
	}
	pid, err := peer.Decode(pidText)
	if err != nil || pid.String() != pidText {
		return "", nil, fmt.Errorf("%w: broadcast ID %q: %q is not a peer ID", ErrMalformed, clip(id), clip(pidText))
	}
	key, ok := ed25519Of(pid)
	if !ok {
		return "", nil, fmt.Errorf("%w: broadcast ID %q: the broadcaster's peer ID holds no ed25519 key", ErrMalformed, clip(id))
	}
	return pid, key, nil
}

// ed25519Of reads the ed25519 public key libp2p inlines into a peer ID.
func ed25519Of(pid peer.ID) (ed25519.PublicKey, bool) {
	pub, err := pid.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return nil, false
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(raw), true
}

// clip shortens what an error message quotes of untrusted text.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
