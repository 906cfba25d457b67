package audience

import (
	"crypto/ed25519"
	"fmt"
	"math"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// The signing domains: each kind of object is signed under its own, so a
// signature on one can never pass for another.
const (
	deviceKeyDomain  = "peerscope/audience/device-key/1\x00"
	bundleDomain     = "peerscope/audience/bundle/1\x00"
	membershipDomain = "peerscope/audience/membership/1\x00"
	rosterDomain     = "peerscope/audience/roster/1\x00"
)

// deterministic writes fields in number order, proto3 defaults left out.
var deterministic = proto.MarshalOptions{Deterministic: true}

// signer is a libp2p identity key as ed25519, with its peer ID.
type signer struct {
	key ed25519.PrivateKey
	id  peer.ID
}

// signerOf accepts ed25519 libp2p keys only: a peer ID inlines such a key,
// so a receiver verifies with the peer ID (or the broadcast ID) alone.
func signerOf(k crypto.PrivKey) (signer, error) {
	if k == nil || k.Type() != crypto.Ed25519 {
		return signer{}, ErrBadKey
	}
	raw, err := k.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return signer{}, fmt.Errorf("%w: raw key of %d bytes", ErrBadKey, len(raw))
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return signer{}, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return signer{key: ed25519.PrivateKey(raw), id: id}, nil
}

// broadcasterSigner is signerOf for an object of broadcast: the key must be
// its broadcaster's, the one that the broadcast ID names.
func broadcasterSigner(k crypto.PrivKey, broadcast string) (signer, error) {
	s, err := signerOf(k)
	if err != nil {
		return signer{}, err
	}
	id, _, err := link.BroadcasterOf(broadcast)
	if err != nil {
		return signer{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if id != s.id {
		return signer{}, fmt.Errorf("%w: %s signs, the broadcast is %s's", ErrNotBroadcaster, s.id, id)
	}
	return s, nil
}

func (s signer) sign(domain string, body []byte) []byte {
	return ed25519.Sign(s.key, append([]byte(domain), body...))
}

// verifyBroadcaster checks a signature by the broadcaster a broadcast ID
// names.
func verifyBroadcaster(broadcast, domain string, body, sig []byte) error {
	_, pub, err := link.BroadcasterOf(broadcast)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return verify(pub, domain, body, sig)
}

// verifyPeer checks a signature by the ed25519 key a peer ID inlines.
func verifyPeer(id peer.ID, domain string, body, sig []byte) error {
	pub, err := id.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return fmt.Errorf("%w: peer %s holds no ed25519 key", ErrBadSignature, id)
	}
	raw, err := pub.Raw()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return verify(ed25519.PublicKey(raw), domain, body, sig)
}

func verify(pub ed25519.PublicKey, domain string, body, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(pub, append([]byte(domain), body...), sig) {
		return ErrBadSignature
	}
	return nil
}

// marshalSigned encodes a signed object: two byte fields, nothing to fail
// on.
func marshalSigned(body, sig []byte) []byte {
	b, err := deterministic.Marshal(&audiencepb.Signed{Body: body, Signature: sig})
	if err != nil {
		return nil
	}
	return b
}

// parseSigned decodes a Signed of at most max bytes and then its body into
// m (after check, when given, has seen the body's bytes), keeping the
// body's bytes as received. It checks the form only.
func parseSigned(b []byte, max int, m proto.Message, check func(body []byte) error) (body, sig []byte, err error) {
	if len(b) > max {
		return nil, nil, fmt.Errorf("%d bytes, at most %d", len(b), max)
	}
	var s audiencepb.Signed
	if err := pbwire.Unmarshal(b, &s); err != nil {
		return nil, nil, err
	}
	if len(s.Body) == 0 {
		return nil, nil, fmt.Errorf("no body")
	}
	if len(s.Signature) != ed25519.SignatureSize {
		return nil, nil, fmt.Errorf("signature of %d bytes", len(s.Signature))
	}
	if check != nil {
		if err := check(s.Body); err != nil {
			return nil, nil, err
		}
	}
	if err := pbwire.Unmarshal(s.Body, m); err != nil {
		return nil, nil, err
	}
	return s.Body, s.Signature, nil
}

// decodePeer reads a peer ID sent as bytes (identity.DecodePeer's bounds).
func decodePeer(b []byte) (peer.ID, error) { return identity.DecodePeer(b) }

// checkBroadcast checks a broadcast ID as the chunk bounds it and as link
// parses it: one whose broadcaster can be known from it.
func checkBroadcast(b string) error {
	if _, _, err := link.BroadcasterOf(b); err != nil {
		return err
	}
	return nil
}

// suiteOf reads a wire suite; ids that do not fit 16 bits are malformed.
func suiteOf(s *audiencepb.Suite) (Suite, error) {
	if s == nil {
		return Suite{}, fmt.Errorf("no suite")
	}
	if s.Kem > math.MaxUint16 || s.Kdf > math.MaxUint16 || s.Aead > math.MaxUint16 {
		return Suite{}, fmt.Errorf("suite ids over 16 bits")
	}
	return Suite{KEM: uint16(s.Kem), KDF: uint16(s.Kdf), AEAD: uint16(s.Aead)}, nil
}

func (s Suite) pb() *audiencepb.Suite {
	return &audiencepb.Suite{Kem: uint32(s.KEM), Kdf: uint32(s.KDF), Aead: uint32(s.AEAD)}
}
