package audience

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/internal/testutil"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "write the tables' encodings under testdata/fuzz")

// t0 is the tests' now; keys are valid for a day from it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seededRand is a repeatable randomness source: the same keys and secrets
// in every run, so that committed fuzz seeds stay what they were.
func seededRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// A party of the tests: a libp2p identity.
type party struct {
	key crypto.PrivKey
	id  peer.ID
}

func seededParty(seed byte) party {
	k, id := testutil.SeededPeer(seed)
	return party{key: k, id: id}
}

var (
	caster = seededParty(0x10) // the broadcaster
	rogue  = seededParty(0xee) // signs what it should not
	alice  = seededParty(0xa1) // members' devices
	bob    = seededParty(0xb0)
	carol  = seededParty(0xc0)
)

// broadcast is caster's broadcast; otherCast another one of caster's.
var (
	broadcast = caster.id.String() + ".abcdefgh"
	otherCast = caster.id.String() + ".zzzzzzzz"
)

// device returns p's device key, made from a seeded source: the same key
// for the same seed.
func device(t testing.TB, p party, seed byte) *DevicePrivateKey {
	t.Helper()
	k, err := NewDeviceKey(seededRand(seed), p.key, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// broadcastSecret is the tests' broadcast secret.
func broadcastSecret(t testing.TB, seed byte) [SecretSize]byte {
	t.Helper()
	s, err := NewBroadcastSecret(seededRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// epoch starts epoch n of broadcast b with a seeded secret.
func epoch(t testing.TB, b string, n uint32, seed byte) *Epoch {
	t.Helper()
	e, err := NewEpoch(seededRand(seed), b, n, broadcastSecret(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// plaintext returns n bytes that are not all alike.
func plaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// isErr reports whether err wraps want (nil: err is nil).
func isErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

// signer is the broadcaster's chunk signer.
func chunkSigner(t testing.TB) *chunk.Signer {
	t.Helper()
	s, err := chunk.NewSigner(caster.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flipBit returns a copy of b with bit i flipped.
func flipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i/8] ^= 1 << (i % 8)
	return c
}

// unmarshalPB decodes b into m with the checks of the decoders.
func unmarshalPB(b []byte, m interface{ ProtoReflect() protoreflect.Message }) error {
	return pbwire.Unmarshal(b, m)
}
