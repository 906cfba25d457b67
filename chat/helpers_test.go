package chat

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/peerscope/peerscope/internal/testutil"
	"google.golang.org/protobuf/encoding/protowire"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "write the table's encodings under testdata/fuzz")

// t0 is the tests' "now" for the pure state machine.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testPeer is a deterministic libp2p identity.
type testPeer struct {
	id   peer.ID
	priv crypto.PrivKey
}

func newTestPeer(seed byte) testPeer {
	priv, id := testutil.SeededPeer(seed)
	return testPeer{id: id, priv: priv}
}

var (
	broadcasterPeer = newTestPeer(1)
	alice           = newTestPeer(2) // identified viewer
	bob             = newTestPeer(3) // anonymous viewer
	carol           = newTestPeer(4) // a moderator in some cases
	mallory         = newTestPeer(5) // the attacker
	viewerPeer      = newTestPeer(6) // the machine under test

	// bootKey is the test bootstrap's attestation key; rogueKey is one
	// nobody trusts.
	bootKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xb0}, ed25519.SeedSize))
	rogueKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xee}, ed25519.SeedSize))
	trusted  = []ed25519.PublicKey{bootKey.Public().(ed25519.PublicKey)}
)

const testBroadcast = "test-broadcast.abcdefgh"

// attestation returns a signed attestation of p as @handle, valid for a day
// from t0.
func attestation(p peer.ID, handle string, key ed25519.PrivateKey) []byte {
	a := &Attestation{
		Provider: "twitter", Account: "id-" + handle, Handle: "@" + handle, Name: handle + " Example",
		Avatar: "https://example.com/" + handle + ".png", Peer: p,
		Issued: t0.Add(-time.Hour), Expires: t0.Add(24 * time.Hour),
	}
	if err := a.Sign(key); err != nil {
		panic(err)
	}
	return a.Marshal()
}

// signed signs an action as p (the broadcaster, unless a test forges).
func signed(p testPeer, a action) *signedAction {
	if a.Broadcast == "" {
		a.Broadcast = testBroadcast
	}
	s, err := signAction(a, p.priv)
	if err != nil {
		panic(err)
	}
	return s
}

func env(sent time.Time, e envelope) envelope {
	if e.Broadcast == "" {
		e.Broadcast = testBroadcast
	}
	e.Sent = sent.UnixNano()
	return e
}

func commentEnv(sent time.Time, id uint64, text string, att []byte) envelope {
	return env(sent, envelope{Comment: &wireComment{ID: id, Text: text, Attestation: att}})
}

func actionEnv(sent time.Time, s *signedAction) envelope {
	return env(sent, envelope{Action: s})
}

// newTestMachine returns a machine for self in testBroadcast.
func newTestMachine(self testPeer, att []byte) *machine {
	cfg, err := Config{Broadcast: testBroadcast, Broadcaster: broadcasterPeer.id, Trusted: trusted,
		Attestation: att, Rand: rand.New(rand.NewPCG(1, 2))}.withDefaults()
	if err != nil {
		panic(err)
	}
	mc := machineConfig{Config: cfg, self: self.id, brKey: broadcasterPeer.priv.GetPublic()}
	if self.id == broadcasterPeer.id {
		mc.selfKey = self.priv
	}
	if att != nil {
		a, _ := ParseAttestation(att)
		if a.Verify(trusted, self.id, t0) == nil {
			id := a.Identity()
			mc.attested = &id
		}
	}
	return newMachine(mc)
}

func mustMarshal(t testing.TB, e envelope) []byte {
	t.Helper()
	b := e.mustEncode()
	var probe envelope
	if err := probe.unmarshal(b); err != nil {
		t.Fatalf("test envelope does not decode: %v", err)
	}
	return b
}

// mustEncode encodes a test's envelope, whose strings are UTF-8.
func (e envelope) mustEncode() []byte {
	b, err := e.encode()
	if err != nil {
		panic(err)
	}
	return b
}

// mustEncode encodes a test's action, whose strings are UTF-8.
func (a *action) mustEncode() []byte {
	b, err := a.encode()
	if err != nil {
		panic(err)
	}
	return b
}

func (s *signedAction) mustEncode() []byte { return s.encode() }

// appendMessage appends an embedded message, even an empty one, for tests
// that write bytes by hand (malformed ones among them).
func appendMessage(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
