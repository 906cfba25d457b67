package audience

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// Limits of a device key's wire forms.
const (
	// MaxDeviceKeySize bounds a signed device key (X-Wing's is about
	// 1.4 KB).
	MaxDeviceKeySize = 2 << 10
	// MaxPublicKeyLen bounds a device key's HPKE public key (X-Wing's is
	// 1,216 bytes).
	MaxPublicKeyLen = 1600
	// MaxDevicePrivateKeySize bounds a stored private device key.
	MaxDevicePrivateKeySize = 4 << 10
)

// FingerprintSize is the length of a device key's fingerprint.
const FingerprintSize = sha256.Size

// Fingerprint names a device key: SHA-256 over a domain and the key's
// signed body, so it commits to the peer, the suite, the public key and the
// validity. Bundles and rosters name keys by it, and it is what a bootstrap
// attests to an account.
type Fingerprint [FingerprintSize]byte

const fingerprintDomain = "peerscope/audience/device-key-fp/1\x00"

// A DeviceKey is a member device's audience key: an HPKE public key of its
// own (not its libp2p identity key, which signs it), for a named suite,
// valid from Created until Expires. Everything in it is public: a bootstrap
// can attest its fingerprint to an account, list it and serve it, and
// broadcasters wrap epoch secrets for it.
//
// The signature is ed25519 by the key the Peer ID inlines, over
// deviceKeyDomain ‖ body, the body as sent: a parsed key keeps the body's
// bytes and never re-encodes them.
type DeviceKey struct {
	Peer      peer.ID
	Suite     Suite
	Public    []byte // SerializePublicKey of the suite's KEM
	Created   time.Time
	Expires   time.Time
	Signature []byte

	body []byte // the signed bytes, as signed or as received
	pub  hpke.PublicKey
}

// A DevicePrivateKey is a device key with its private half: what a node
// keeps in its data directory (Marshal, ParseDevicePrivateKey) to open the
// bundles wrapped for it. It is never sent.
type DevicePrivateKey struct {
	Key  *DeviceKey
	priv hpke.PrivateKey
}

// NewDeviceKey makes a device key of suite XWing for the device whose
// libp2p identity key is id, signed by it, valid from created until expires.
// Its private key is derived from 32 bytes of rand (crypto/rand.Reader in
// production).
func NewDeviceKey(rand io.Reader, id crypto.PrivKey, created, expires time.Time) (*DevicePrivateKey, error) {
	s, err := signerOf(id)
	if err != nil {
		return nil, err
	}
	hs, err := XWing.instantiate()
	if err != nil {
		return nil, err
	}
	ikm := make([]byte, 32)
	if _, err := io.ReadFull(rand, ikm); err != nil {
		return nil, fmt.Errorf("audience: reading randomness: %w", err)
	}
	priv, err := hs.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("audience: deriving the device key: %w", err)
	}
	k := &DeviceKey{Peer: s.id, Suite: XWing, Public: priv.PublicKey().Bytes(), Created: created, Expires: expires,
		pub: priv.PublicKey()}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	k.body, err = deterministic.Marshal(&audiencepb.DeviceKey{
		Peer: []byte(k.Peer), Suite: k.Suite.pb(), PublicKey: k.Public,
		Created: pbwire.UnixNano(created), Expires: pbwire.UnixNano(expires),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	k.Signature = s.sign(deviceKeyDomain, k.body)
	return &DevicePrivateKey{Key: k, priv: priv}, nil
}

// Marshal returns the signed device key's wire form.
func (k *DeviceKey) Marshal() []byte { return marshalSigned(k.body, k.Signature) }

// Fingerprint returns the key's fingerprint.
func (k *DeviceKey) Fingerprint() Fingerprint {
	h := sha256.New()
	h.Write([]byte(fingerprintDomain))
	h.Write(k.body)
	var f Fingerprint
	h.Sum(f[:0])
	return f
}

// ParseDeviceKey decodes a signed device key and checks its form (sizes,
// wire types, the suite, the public key's encoding), not its signature:
// see Verify.
func ParseDeviceKey(b []byte) (*DeviceKey, error) {
	var pb audiencepb.DeviceKey
	body, sig, err := parseSigned(b, MaxDeviceKeySize, &pb, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: device key: %w", ErrMalformed, err)
	}
	k := &DeviceKey{Public: pb.PublicKey, Created: pbwire.FromUnixNano(pb.Created),
		Expires: pbwire.FromUnixNano(pb.Expires), Signature: sig, body: body}
	if k.Peer, err = decodePeer(pb.Peer); err != nil {
		return nil, fmt.Errorf("%w: device key: %w", ErrMalformed, err)
	}
	if k.Suite, err = suiteOf(pb.Suite); err != nil {
		return nil, fmt.Errorf("%w: device key: %w", ErrMalformed, err)
	}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("%w: device key: %w", ErrMalformed, err)
	}
	hs, err := k.Suite.instantiate()
	if err != nil {
		return nil, err
	}
	if k.pub, err = hs.kem.NewPublicKey(k.Public); err != nil {
		return nil, fmt.Errorf("%w: device key: public key: %w", ErrMalformed, err)
	}
	return k, nil
}

// check enforces the field limits.
func (k *DeviceKey) check() error {
	switch {
	case k.Peer == "":
		return fmt.Errorf("no peer")
	case len(k.Public) == 0 || len(k.Public) > MaxPublicKeyLen:
		return fmt.Errorf("public key of %d bytes", len(k.Public))
	case k.Created.IsZero() || !k.Expires.After(k.Created):
		return fmt.Errorf("expires %v is not after created %v", k.Expires, k.Created)
	}
	return nil
}

// Verify checks that the key is signed by the identity key of the peer it
// names, that its suite is supported and that it has not expired at now.
// Whether the peer belongs to an account is the bootstrap's attestation,
// checked elsewhere.
func (k *DeviceKey) Verify(now time.Time) error {
	if k.body == nil {
		return fmt.Errorf("%w: device key never signed", ErrBadSignature)
	}
	if err := verifyPeer(k.Peer, deviceKeyDomain, k.body, k.Signature); err != nil {
		return fmt.Errorf("device key of %s: %w", k.Peer, err)
	}
	if _, err := k.Suite.instantiate(); err != nil {
		return err
	}
	if !now.Before(k.Expires) {
		return fmt.Errorf("%w: device key of %s at %s", ErrExpired, k.Peer, k.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Marshal returns the private key's storage form. It is secret: the node
// writes it to its data directory (mode 0600) and nowhere else.
func (k *DevicePrivateKey) Marshal() ([]byte, error) {
	raw, err := k.priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("audience: the private key: %w", err)
	}
	return deterministic.Marshal(&audiencepb.DevicePrivateKey{DeviceKey: k.Key.Marshal(), PrivateKey: raw})
}

// ParseDevicePrivateKey reads what Marshal wrote: the device key (whose own
// signature must verify: a damaged file is refused, not used) and a private
// key that must be its private half. It does not check expiry: a node
// renews an expired key.
func ParseDevicePrivateKey(b []byte) (*DevicePrivateKey, error) {
	if len(b) > MaxDevicePrivateKeySize {
		return nil, fmt.Errorf("%w: private device key of %d bytes", ErrMalformed, len(b))
	}
	var pb audiencepb.DevicePrivateKey
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: private device key: %w", ErrMalformed, err)
	}
	k, err := ParseDeviceKey(pb.DeviceKey)
	if err != nil {
		return nil, err
	}
	if err := verifyPeer(k.Peer, deviceKeyDomain, k.body, k.Signature); err != nil {
		return nil, fmt.Errorf("private device key: %w", err)
	}
	hs, err := k.Suite.instantiate()
	if err != nil {
		return nil, err
	}
	priv, err := hs.kem.NewPrivateKey(pb.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: private device key: %w", ErrMalformed, err)
	}
	if !bytes.Equal(priv.PublicKey().Bytes(), k.Public) {
		return nil, fmt.Errorf("%w: the private key is not the device key's", ErrMalformed)
	}
	return &DevicePrivateKey{Key: k, priv: priv}, nil
}
