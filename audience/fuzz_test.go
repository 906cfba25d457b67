package audience

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// decoderCase is an input of one of the package's decoders, named by its
// fuzz target, and what parsing it gives.
type decoderCase struct {
	target string
	name   string
	b      []byte
	want   error
}

// fuzzFixture is what the fuzz targets open and verify with: the same
// keys and epoch in every run, so that the committed seeds stay valid.
type fuzzFixture struct {
	alice *DevicePrivateKey
	epoch *Epoch
}

func newFuzzFixture(t testing.TB) fuzzFixture {
	return fuzzFixture{alice: device(t, alice, 1), epoch: epoch(t, broadcast, 5, 1)}
}

// decoderCases is the one table of encoded objects that the parse tests
// and the fuzz targets' seeds share: for each decoder, valid inputs and the
// ways it refuses.
func decoderCases(t testing.TB) []decoderCase {
	fx := newFuzzFixture(t)
	var cases []decoderCase
	add := func(target string, list ...decoderCase) {
		for _, c := range list {
			c.target = target
			cases = append(cases, c)
		}
	}
	dk := fx.alice.Key
	priv, err := fx.alice.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	add("FuzzDeviceKey",
		decoderCase{name: "alice", b: dk.Marshal()},
		decoderCase{name: "dhkem-suite", b: resigned(t, dk, alice, func(pb *audiencepb.DeviceKey) { pb.Suite.Kem = 0x20 }), want: ErrUnsupportedSuite},
		decoderCase{name: "future-field", b: resigned(t, dk, alice, func(pb *audiencepb.DeviceKey) {
			pb.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
		})},
		decoderCase{name: "no-public-key", b: resigned(t, dk, alice, func(pb *audiencepb.DeviceKey) { pb.PublicKey = nil }), want: ErrMalformed},
		decoderCase{name: "short-public-key", b: resigned(t, dk, alice, func(pb *audiencepb.DeviceKey) { pb.PublicKey = pb.PublicKey[:100] }), want: ErrMalformed},
		decoderCase{name: "unsigned", b: marshalSigned(dk.body, nil), want: ErrMalformed},
		decoderCase{name: "truncated", b: dk.Marshal()[:200], want: ErrMalformed},
		decoderCase{name: "empty", b: nil, want: ErrMalformed},
		decoderCase{name: "wrong-wire-type", b: protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), want: ErrMalformed},
	)
	add("FuzzDevicePrivateKey",
		decoderCase{name: "alice", b: priv},
		decoderCase{name: "no-private-key", b: marshalPB(t, &audiencepb.DevicePrivateKey{DeviceKey: dk.Marshal()}), want: ErrMalformed},
		decoderCase{name: "empty", b: nil, want: ErrMalformed},
	)
	bundle, err := fx.epoch.Wrap(caster.key, dk, t0)
	if err != nil {
		t.Fatal(err)
	}
	add("FuzzBundle",
		decoderCase{name: "for-alice", b: bundle.Marshal()},
		decoderCase{name: "epoch-0", b: resignBundle(t, bundle, caster, func(pb *audiencepb.Bundle) { pb.Epoch = 0 }), want: ErrMalformed},
		decoderCase{name: "short-recipient", b: resignBundle(t, bundle, caster, func(pb *audiencepb.Bundle) { pb.Recipient = pb.Recipient[:31] }), want: ErrMalformed},
		decoderCase{name: "no-sealed", b: resignBundle(t, bundle, caster, func(pb *audiencepb.Bundle) { pb.Sealed = nil }), want: ErrMalformed},
		decoderCase{name: "bad-broadcast", b: resignBundle(t, bundle, caster, func(pb *audiencepb.Bundle) { pb.Broadcast = "x" }), want: ErrMalformed},
		decoderCase{name: "suite-over-16-bits", b: resignBundle(t, bundle, caster, func(pb *audiencepb.Bundle) { pb.Suite.Kem = 1 << 16 }), want: ErrMalformed},
	)
	tok := token(t, broadcast, alice.id, 1, caster)
	add("FuzzToken",
		decoderCase{name: "alice", b: tok.Marshal()},
		decoderCase{name: "no-peer", b: resignToken(t, tok, func(pb *audiencepb.MembershipToken) { pb.Peer = nil }), want: ErrMalformed},
		decoderCase{name: "version-0", b: resignToken(t, tok, func(pb *audiencepb.MembershipToken) { pb.RosterVersion = 0 }), want: ErrMalformed},
		decoderCase{name: "expires-first", b: resignToken(t, tok, func(pb *audiencepb.MembershipToken) { pb.Expires = pb.Issued }), want: ErrMalformed},
	)
	r := roster(t, 2, alice, bob)
	add("FuzzRoster",
		decoderCase{name: "alice-and-bob", b: r.Marshal()},
		decoderCase{name: "too-many-devices", b: resignRoster(t, r, func(pb *audiencepb.Roster) {
			for range MaxMemberDevices {
				pb.Members[0].Devices = append(pb.Members[0].Devices, pb.Members[0].Devices[0])
			}
		}), want: ErrMalformed},
		decoderCase{name: "device-twice", b: resignRoster(t, r, func(pb *audiencepb.Roster) { pb.Members[1].Devices = pb.Members[0].Devices }), want: ErrMalformed},
		decoderCase{name: "short-fingerprint", b: resignRoster(t, r, func(pb *audiencepb.Roster) { pb.Members[0].Devices[0].Fingerprint = []byte{1} }), want: ErrMalformed},
	)
	chat, err := fx.epoch.Keys().SealChat(seededRand(9), alice.id, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	add("FuzzSealed",
		decoderCase{name: "chat", b: chat},
		decoderCase{name: "short-nonce", b: marshalPB(t, &audiencepb.Sealed{Epoch: 5, Nonce: []byte{1}, Ciphertext: make([]byte, 16)}), want: ErrMalformed},
		decoderCase{name: "epoch-0", b: marshalPB(t, &audiencepb.Sealed{Nonce: make([]byte, 12), Ciphertext: make([]byte, 16)}), want: ErrMalformed},
		decoderCase{name: "no-tag", b: marshalPB(t, &audiencepb.Sealed{Epoch: 5, Nonce: make([]byte, 12), Ciphertext: make([]byte, 15)}), want: ErrMalformed},
	)
	for i, c := range sealedCases(t, epoch(t, broadcast, 5, 1)) {
		if len(c.Payload) < 4<<10 {
			add("FuzzPrivateChunk", decoderCase{name: chunkCases()[i].name, b: c.Bytes()})
		}
	}
	return cases
}

func marshalPB(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := deterministic.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func resignToken(t testing.TB, tok *Token, edit func(*audiencepb.MembershipToken)) []byte {
	t.Helper()
	var pb audiencepb.MembershipToken
	if err := unmarshalPB(tok.body, &pb); err != nil {
		t.Fatal(err)
	}
	edit(&pb)
	body := marshalPB(t, &pb)
	s, _ := signerOf(caster.key)
	return marshalSigned(body, s.sign(membershipDomain, body))
}

func resignRoster(t testing.TB, r *Roster, edit func(*audiencepb.Roster)) []byte {
	t.Helper()
	var pb audiencepb.Roster
	if err := unmarshalPB(r.body, &pb); err != nil {
		t.Fatal(err)
	}
	edit(&pb)
	body := marshalPB(t, &pb)
	s, _ := signerOf(caster.key)
	return marshalSigned(body, s.sign(rosterDomain, body))
}

// TestDecoders: each input of the table parses, or is refused with the
// sentinel it names.
func TestDecoders(t *testing.T) {
	for _, c := range decoderCases(t) {
		t.Run(c.target+"/"+c.name, func(t *testing.T) {
			var err error
			switch c.target {
			case "FuzzDeviceKey":
				_, err = ParseDeviceKey(c.b)
			case "FuzzDevicePrivateKey":
				_, err = ParseDevicePrivateKey(c.b)
			case "FuzzBundle":
				_, err = ParseBundle(c.b)
			case "FuzzToken":
				_, err = ParseToken(c.b)
			case "FuzzRoster":
				_, err = ParseRoster(c.b)
			case "FuzzSealed":
				_, err = ParseSealed(c.b)
			case "FuzzPrivateChunk":
				_, err = chunk.Decode(c.b)
			}
			if !isErr(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
		})
	}
}

// TestWriteFuzzSeeds writes the table as the fuzz targets' seed corpora
// when run with -write-fuzz-seeds, leaving files that exist alone.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/*/seed-*")
	}
	for _, c := range decoderCases(t) {
		fuzzseed.Write(t, c.target, fuzzseed.Name(c.name), c.b)
	}
}

// sentinel reports whether err is one of the refusals a decoder or a check
// may give: anything else (or a panic) is a bug.
func sentinel(err error) bool {
	for _, s := range []error{ErrMalformed, ErrUnsupportedSuite, ErrBadSignature, ErrExpired, ErrWrongBroadcast,
		ErrWrongPeer, ErrWrongRecipient, ErrWrongEpoch, ErrOpen, ErrNotMember,
		chunk.ErrMalformed, chunk.ErrBadSignature, chunk.ErrWrongBroadcast} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func seed(f *testing.F, target string) fuzzFixture {
	for _, c := range decoderCases(f) {
		if c.target == target {
			f.Add(c.b)
		}
	}
	return newFuzzFixture(f)
}

// check fails the fuzz test on an error that is not a sentinel.
func check(t *testing.T, what string, err error) bool {
	t.Helper()
	if err != nil && !sentinel(err) {
		t.Fatalf("%s: %v is no sentinel", what, err)
	}
	return err == nil
}

func FuzzDeviceKey(f *testing.F) {
	seed(f, "FuzzDeviceKey")
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseDeviceKey(b)
		if !check(t, "parse", err) {
			return
		}
		check(t, "verify", k.Verify(t0))
		again, err := ParseDeviceKey(k.Marshal())
		if err != nil || again.Fingerprint() != k.Fingerprint() {
			t.Fatalf("the re-encoded key: %v", err)
		}
	})
}

func FuzzDevicePrivateKey(f *testing.F) {
	seed(f, "FuzzDevicePrivateKey")
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseDevicePrivateKey(b)
		if !check(t, "parse", err) {
			return
		}
		enc, err := k.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ParseDevicePrivateKey(enc); err != nil || again.Key.Fingerprint() != k.Key.Fingerprint() {
			t.Fatalf("the re-encoded key: %v", err)
		}
	})
}

func FuzzBundle(f *testing.F) {
	fx := seed(f, "FuzzBundle")
	f.Fuzz(func(t *testing.T, b []byte) {
		bundle, err := ParseBundle(b)
		if !check(t, "parse", err) {
			return
		}
		if keys, err := bundle.Open(fx.alice, broadcast); check(t, "open", err) && keys.Epoch() != bundle.Epoch {
			t.Fatal("opened as another epoch")
		}
		if again, err := ParseBundle(bundle.Marshal()); err != nil || !bytes.Equal(again.body, bundle.body) {
			t.Fatalf("the re-encoded bundle: %v", err)
		}
	})
}

func FuzzToken(f *testing.F) {
	seed(f, "FuzzToken")
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := ParseToken(b)
		if !check(t, "parse", err) {
			return
		}
		check(t, "verify", tok.Verify(broadcast, alice.id, t0))
		if again, err := ParseToken(tok.Marshal()); err != nil || !bytes.Equal(again.body, tok.body) {
			t.Fatalf("the re-encoded token: %v", err)
		}
	})
}

func FuzzRoster(f *testing.F) {
	seed(f, "FuzzRoster")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRoster(b)
		if !check(t, "parse", err) {
			return
		}
		check(t, "verify", r.Verify(broadcast))
		if again, err := ParseRoster(r.Marshal()); err != nil || !bytes.Equal(again.body, r.body) {
			t.Fatalf("the re-encoded roster: %v", err)
		}
	})
}

func FuzzSealed(f *testing.F) {
	fx := seed(f, "FuzzSealed")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSealed(b)
		if !check(t, "parse", err) {
			return
		}
		_, err = fx.epoch.Keys().OpenChat(alice.id, s)
		check(t, "open", err)
		if again, err := ParseSealed(s.Marshal()); err != nil || again.Epoch != s.Epoch || again.Nonce != s.Nonce ||
			!bytes.Equal(again.Ciphertext, s.Ciphertext) {
			t.Fatalf("the re-encoded message: %v", err)
		}
	})
}

// FuzzPrivateChunk: any bytes are refused by the chunk decoder, the
// signature or the decryption with a sentinel, or open to a plaintext.
func FuzzPrivateChunk(f *testing.F) {
	fx := seed(f, "FuzzPrivateChunk")
	pub := chunkSigner(f).PublicKey()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := chunk.Decode(b)
		if !check(t, "decode", err) {
			return
		}
		if !check(t, "verify", c.Verify(broadcast, pub)) {
			return
		}
		if p, err := fx.epoch.Keys().OpenChunk(nil, c); check(t, "open", err) && len(p) != len(c.Payload)-Overhead {
			t.Fatal("opened to the wrong length")
		}
	})
}
