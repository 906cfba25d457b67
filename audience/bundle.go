package audience

import (
	"crypto/hpke"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/proto/audiencepb"
)

// MaxBundleSize bounds a signed bundle (X-Wing's are about 1.4 KB).
const MaxBundleSize = 4 << 10

// maxSealedLen bounds a bundle's HPKE output.
const maxSealedLen = 3 << 10

// A Bundle is an epoch's secrets wrapped for one member device's key:
// HPKE (base mode, the device key's suite) to the device key, with the
// broadcast, the epoch and the key's fingerprint in the HPKE info, and
// signed by the broadcaster, since base mode does not say who sealed.
// Everything in it but the sealed secrets is public, and those only the
// device can open: a bootstrap holding it in a mailbox learns that the
// device is invited to that epoch, and nothing it could decrypt with.
type Bundle struct {
	Broadcast string
	Epoch     uint32
	Recipient Fingerprint
	Suite     Suite
	Sealed    []byte // HPKE enc ‖ ciphertext of Secrets
	Signature []byte

	body []byte
}

const bundleInfoDomain = "peerscope/audience/bundle/1\x00"

// bundleInfo is the HPKE info: the broadcast, the epoch and the recipient
// key, so a bundle opens only as what it says it is.
func bundleInfo(broadcast string, epoch uint32, to Fingerprint) []byte {
	b := make([]byte, 0, len(bundleInfoDomain)+4+len(broadcast)+4+len(to))
	b = append(b, bundleInfoDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(broadcast)))
	b = append(b, broadcast...)
	b = binary.BigEndian.AppendUint32(b, epoch)
	return append(b, to[:]...)
}

// Wrap wraps the epoch's secrets for a device key, which must verify at now
// (signed by its device's identity key, its suite supported, not expired;
// that its peer is a member is the roster's business), and signs the bundle
// with broadcaster, the broadcast's key. HPKE draws its encapsulation
// randomness from crypto/rand inside crypto/hpke: Go 1.26 takes no reader
// for it (tests make it repeatable with testing/cryptotest).
func (e *Epoch) Wrap(broadcaster crypto.PrivKey, to *DeviceKey, now time.Time) (*Bundle, error) {
	s, err := broadcasterSigner(broadcaster, e.keys.broadcast)
	if err != nil {
		return nil, err
	}
	if err := to.Verify(now); err != nil {
		return nil, err
	}
	hs, err := to.Suite.instantiate()
	if err != nil {
		return nil, err
	}
	fp := to.Fingerprint()
	plain := make([]byte, 0, 2*SecretSize)
	plain = append(append(plain, e.secrets.Epoch[:]...), e.secrets.Broadcast[:]...)
	sealed, err := hpke.Seal(to.pub, hs.kdf, hs.aead, bundleInfo(e.keys.broadcast, e.keys.epoch, fp), plain)
	if err != nil {
		return nil, fmt.Errorf("audience: wrapping for %s: %w", to.Peer, err)
	}
	b := &Bundle{Broadcast: e.keys.broadcast, Epoch: e.keys.epoch, Recipient: fp, Suite: to.Suite, Sealed: sealed}
	if b.body, err = b.marshalBody(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	b.Signature = s.sign(bundleDomain, b.body)
	return b, nil
}

func (b *Bundle) marshalBody() ([]byte, error) {
	return deterministic.Marshal(&audiencepb.Bundle{
		Broadcast: b.Broadcast, Epoch: b.Epoch, Recipient: b.Recipient[:], Suite: b.Suite.pb(), Sealed: b.Sealed,
	})
}

// Marshal returns the signed bundle's wire form.
func (b *Bundle) Marshal() []byte { return marshalSigned(b.body, b.Signature) }

// ParseBundle decodes a signed bundle and checks its form, not its
// signature or recipient (Open does, in that order).
func ParseBundle(raw []byte) (*Bundle, error) {
	var pb audiencepb.Bundle
	body, sig, err := parseSigned(raw, MaxBundleSize, &pb, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: bundle: %w", ErrMalformed, err)
	}
	b := &Bundle{Broadcast: pb.Broadcast, Epoch: pb.Epoch, Sealed: pb.Sealed, Signature: sig, body: body}
	if err := checkBroadcast(pb.Broadcast); err != nil {
		return nil, fmt.Errorf("%w: bundle: %w", ErrMalformed, err)
	}
	switch {
	case pb.Epoch == 0:
		return nil, fmt.Errorf("%w: bundle of epoch 0", ErrMalformed)
	case len(pb.Recipient) != FingerprintSize:
		return nil, fmt.Errorf("%w: bundle: recipient of %d bytes", ErrMalformed, len(pb.Recipient))
	case len(pb.Sealed) == 0 || len(pb.Sealed) > maxSealedLen:
		return nil, fmt.Errorf("%w: bundle: sealed secrets of %d bytes", ErrMalformed, len(pb.Sealed))
	}
	copy(b.Recipient[:], pb.Recipient)
	if b.Suite, err = suiteOf(pb.Suite); err != nil {
		return nil, fmt.Errorf("%w: bundle: %w", ErrMalformed, err)
	}
	return b, nil
}

// Open opens a bundle of broadcast with a device's private key and returns
// the epoch's keys. It checks, in this order, that the bundle is of that
// broadcast (ErrWrongBroadcast), that the broadcaster signed it
// (ErrBadSignature: before anything is decrypted), that it is for this
// device key (ErrWrongRecipient), and only then decrypts (ErrOpen).
func (b *Bundle) Open(k *DevicePrivateKey, broadcast string) (*Keys, error) {
	if b.Broadcast != broadcast {
		return nil, fmt.Errorf("%w: a bundle of %q", ErrWrongBroadcast, clip(b.Broadcast))
	}
	if b.body == nil {
		return nil, fmt.Errorf("%w: bundle never signed", ErrBadSignature)
	}
	if err := verifyBroadcaster(b.Broadcast, bundleDomain, b.body, b.Signature); err != nil {
		return nil, fmt.Errorf("bundle of epoch %d: %w", b.Epoch, err)
	}
	fp := k.Key.Fingerprint()
	if b.Recipient != fp {
		return nil, fmt.Errorf("%w: bundle of epoch %d", ErrWrongRecipient, b.Epoch)
	}
	if b.Suite != k.Key.Suite {
		return nil, fmt.Errorf("%w: bundle in %v for a key in %v", ErrUnsupportedSuite, b.Suite, k.Key.Suite)
	}
	hs, err := b.Suite.instantiate()
	if err != nil {
		return nil, err
	}
	plain, err := hpke.Open(k.priv, hs.kdf, hs.aead, bundleInfo(b.Broadcast, b.Epoch, fp), b.Sealed)
	if err != nil || len(plain) != 2*SecretSize {
		return nil, fmt.Errorf("%w: bundle of epoch %d", ErrOpen, b.Epoch)
	}
	var s Secrets
	copy(s.Epoch[:], plain[:SecretSize])
	copy(s.Broadcast[:], plain[SecretSize:])
	return DeriveKeys(b.Broadcast, b.Epoch, s)
}
