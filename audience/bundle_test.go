package audience

import (
	"bytes"
	"errors"
	"testing"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// resignBundle returns b's wire form with its body changed by edit (nil:
// as it was) and signed by by.
func resignBundle(t testing.TB, b *Bundle, by party, edit func(*audiencepb.Bundle)) []byte {
	t.Helper()
	body := b.body
	if edit != nil {
		var pb audiencepb.Bundle
		if err := unmarshalPB(b.body, &pb); err != nil {
			t.Fatal(err)
		}
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
	return marshalSigned(body, s.sign(bundleDomain, body))
}

func parseBundle(t testing.TB, b []byte) *Bundle {
	t.Helper()
	got, err := ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestBundleRoundTrip: a member's device opens the bundle wrapped for it
// (after its wire round trip) and gets the broadcaster's keys: it opens the
// epoch's chunks and the same chat topic.
func TestBundleRoundTrip(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	k := device(t, alice, 1)
	b, err := e.Wrap(caster.key, k.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Marshal()) > MaxBundleSize || len(b.Sealed) != 1200 {
		t.Fatalf("bundle of %d bytes, sealed %d", len(b.Marshal()), len(b.Sealed))
	}
	keys, err := parseBundle(t, b.Marshal()).Open(k, broadcast)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Epoch() != 5 || keys.Broadcast() != broadcast || keys.Topic() != e.Keys().Topic() {
		t.Fatal("the bundle gave other keys")
	}
	c := chunkCase{"part", 1, chunk.FlagKeyframe, 500}.chunk(broadcast)
	if err := e.SealChunk(c); err != nil {
		t.Fatal(err)
	}
	if p, err := keys.OpenChunk(nil, c); err != nil || !bytes.Equal(p, plaintext(500)) {
		t.Fatalf("the member cannot open the epoch's chunk: %v", err)
	}
}

// TestBundleRefusals: each refusal of Open, in the order it checks — a
// bundle not signed by the broadcaster is refused before anything else is
// looked at, a bundle for another device key before anything is decrypted.
func TestBundleRefusals(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	ka, kb := device(t, alice, 1), device(t, bob, 2)
	forAlice, err := e.Wrap(caster.key, ka.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	forBob, err := e.Wrap(caster.key, kb.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	sealedFlipped := func(pb *audiencepb.Bundle) { pb.Sealed[len(pb.Sealed)-1] ^= 1 }
	for _, tc := range []struct {
		name      string
		b         []byte
		key       *DevicePrivateKey
		broadcast string
		want      error
	}{
		{"valid", forAlice.Marshal(), ka, broadcast, nil},
		{"signed by a rogue", resignBundle(t, forAlice, rogue, nil), ka, broadcast, ErrBadSignature},
		{"for bob, signed by a rogue", resignBundle(t, forBob, rogue, nil), ka, broadcast, ErrBadSignature},
		{"body changed under the signature", marshalSigned(mustBody(t, forAlice, sealedFlipped), forAlice.Signature), ka, broadcast, ErrBadSignature},
		{"for another recipient", forBob.Marshal(), ka, broadcast, ErrWrongRecipient},
		{"another broadcast expected", forAlice.Marshal(), ka, otherCast, ErrWrongBroadcast},
		{"bob's sealed secrets relabelled for alice", resignBundle(t, forBob, caster, func(pb *audiencepb.Bundle) {
			fp := ka.Key.Fingerprint()
			pb.Recipient = fp[:]
		}), ka, broadcast, ErrOpen},
		{"another epoch's label", resignBundle(t, forAlice, caster, func(pb *audiencepb.Bundle) { pb.Epoch = 6 }), ka, broadcast, ErrOpen},
		{"sealed secrets altered", resignBundle(t, forAlice, caster, sealedFlipped), ka, broadcast, ErrOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBundle(t, tc.b).Open(tc.key, tc.broadcast)
			if !isErr(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.Wrap(rogue.key, ka.Key, t0); !errors.Is(err, ErrNotBroadcaster) {
		t.Fatalf("Wrap by another key: %v", err)
	}
}

func mustBody(t testing.TB, b *Bundle, edit func(*audiencepb.Bundle)) []byte {
	t.Helper()
	var s audiencepb.Signed
	if err := unmarshalPB(resignBundle(t, b, caster, edit), &s); err != nil {
		t.Fatal(err)
	}
	return s.Body
}

// TestBundleTellsTheMailboxNothing: what a bootstrap holds — the bundle's
// bytes — contains neither secret nor any key derived from them, and two
// bundles of the same epoch for the same device share no ciphertext (HPKE
// encapsulates afresh each time).
func TestBundleTellsTheMailboxNothing(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	k := device(t, alice, 1)
	b1, err := e.Wrap(caster.key, k.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := e.Wrap(caster.key, k.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	wire := b1.Marshal()
	for name, secret := range map[string][]byte{"epoch secret": e.secrets.Epoch[:], "broadcast secret": e.secrets.Broadcast[:]} {
		for i := 0; i+8 <= len(secret); i += 8 {
			if bytes.Contains(wire, secret[i:i+8]) {
				t.Fatalf("8 bytes of the %s are in the bundle", name)
			}
		}
	}
	if bytes.Equal(b1.Sealed[:32], b2.Sealed[:32]) || bytes.Equal(b1.Sealed[len(b1.Sealed)-64:], b2.Sealed[len(b2.Sealed)-64:]) {
		t.Fatal("two wraps of one epoch for one key share bytes")
	}
}
