package audience

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// resigned returns a device key's wire form with its body changed by edit
// and signed by by (nil edit: the body as it was).
func resigned(t testing.TB, k *DeviceKey, by party, edit func(*audiencepb.DeviceKey)) []byte {
	t.Helper()
	var pb audiencepb.DeviceKey
	if err := pbwire.Unmarshal(k.body, &pb); err != nil {
		t.Fatal(err)
	}
	body := k.body
	if edit != nil {
		edit(&pb)
		var err error
		if body, err = deterministic.Marshal(&pb); err != nil {
			t.Fatal(err)
		}
	}
	s, err := signerOf(by.key)
	if err != nil {
		t.Fatal(err)
	}
	return marshalSigned(body, s.sign(deviceKeyDomain, body))
}

func TestDeviceKeyRoundTrip(t *testing.T) {
	k := device(t, alice, 1)
	if k.Key.Peer != alice.id || k.Key.Suite != XWing || len(k.Key.Public) != 1216 {
		t.Fatalf("key of %s, %v, %d bytes", k.Key.Peer, k.Key.Suite, len(k.Key.Public))
	}
	got, err := ParseDeviceKey(k.Key.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(t0); err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint() != k.Key.Fingerprint() || got.Peer != alice.id || !got.Expires.Equal(t0.Add(24*time.Hour)) {
		t.Fatal("the round trip changed the key")
	}
	if again := device(t, alice, 1); again.Key.Fingerprint() != k.Key.Fingerprint() {
		t.Fatal("the same randomness gave another key")
	}
	if other := device(t, alice, 2); other.Key.Fingerprint() == k.Key.Fingerprint() {
		t.Fatal("other randomness gave the same key")
	}
}

// TestDeviceKeyIdentitySignature: an audience key without a valid
// signature by the identity key of the peer it names is refused — signed
// by another peer, its public key swapped under the old signature, its
// peer swapped — and a broadcaster will not wrap for it.
func TestDeviceKeyIdentitySignature(t *testing.T) {
	k := device(t, alice, 1)
	mallory := device(t, rogue, 3)
	// underOldSignature: the body edited, alice's signature kept.
	underOldSignature := func(edit func(*audiencepb.DeviceKey)) []byte {
		var s audiencepb.Signed
		if err := proto.Unmarshal(resigned(t, k.Key, rogue, edit), &s); err != nil {
			t.Fatal(err)
		}
		return marshalSigned(s.Body, k.Key.Signature)
	}
	for name, b := range map[string][]byte{
		"signed by another peer":          resigned(t, k.Key, rogue, nil),
		"public key swapped":              underOldSignature(func(pb *audiencepb.DeviceKey) { pb.PublicKey = mallory.Key.Public }),
		"expiry extended":                 underOldSignature(func(pb *audiencepb.DeviceKey) { pb.Expires += int64(365 * 24 * time.Hour) }),
		"peer claimed, rogue's signature": resigned(t, mallory.Key, rogue, func(pb *audiencepb.DeviceKey) { pb.Peer = []byte(alice.id) }),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDeviceKey(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Verify(t0); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify: %v, want ErrBadSignature", err)
			}
			if _, err := epoch(t, broadcast, 5, 1).Wrap(caster.key, got, t0); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Wrap: %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestDeviceKeyExpiry(t *testing.T) {
	k := device(t, alice, 1).Key
	if err := k.Verify(k.Expires.Add(-time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(k.Expires); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if _, err := epoch(t, broadcast, 5, 1).Wrap(caster.key, k, k.Expires.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("Wrap for an expired key: %v", err)
	}
	if _, err := NewDeviceKey(seededRand(1), alice.key, t0, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no lifetime: %v", err)
	}
}

// TestDeviceKeySuite: a key of a suite this version does not implement is
// refused with ErrUnsupportedSuite, even signed by its device.
func TestDeviceKeySuite(t *testing.T) {
	k := device(t, alice, 1).Key
	b := resigned(t, k, alice, func(pb *audiencepb.DeviceKey) { pb.Suite.Kem = 0x0020 }) // DHKEM(X25519)
	if _, err := ParseDeviceKey(b); !errors.Is(err, ErrUnsupportedSuite) {
		t.Fatalf("%v, want ErrUnsupportedSuite", err)
	}
	if XWing.String() != "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM" || (Suite{KEM: 0x20, KDF: 1, AEAD: 2}).String() == XWing.String() {
		t.Fatal("suite names")
	}
}

func TestNewDeviceKeyRefusesNonEd25519(t *testing.T) {
	k, _, err := crypto.GenerateSecp256k1Key(seededRand(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDeviceKey(seededRand(1), k, t0, t0.Add(time.Hour)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("%v, want ErrBadKey", err)
	}
	if _, err := NewDeviceKey(bytes.NewReader(nil), alice.key, t0, t0.Add(time.Hour)); err == nil {
		t.Fatal("no randomness, and yet a key")
	}
}

// TestDevicePrivateKeyStorage: the private key round-trips through its
// storage form and still opens its bundles; a file whose private key is
// not the device key's, or whose device key's signature fails, is refused.
func TestDevicePrivateKeyStorage(t *testing.T) {
	k := device(t, alice, 1)
	b, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDevicePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	e := epoch(t, broadcast, 5, 1)
	bundle, err := e.Wrap(caster.key, k.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Open(got, broadcast); err != nil {
		t.Fatalf("the stored key does not open its bundle: %v", err)
	}

	other := device(t, alice, 2)
	raw, _ := other.priv.Bytes()
	mismatched, _ := deterministic.Marshal(&audiencepb.DevicePrivateKey{DeviceKey: k.Key.Marshal(), PrivateKey: raw})
	if _, err := ParseDevicePrivateKey(mismatched); !errors.Is(err, ErrMalformed) {
		t.Fatalf("another private key: %v", err)
	}
	ownRaw, _ := k.priv.Bytes()
	forged, _ := deterministic.Marshal(&audiencepb.DevicePrivateKey{DeviceKey: resigned(t, k.Key, rogue, nil), PrivateKey: ownRaw})
	if _, err := ParseDevicePrivateKey(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a damaged device key: %v", err)
	}
}
