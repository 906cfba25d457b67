package mediatest

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/chunk"
)

// Sealing seals chunks as a private broadcast's broadcaster does and opens
// them as its members' players do (a media.Opener), with the real keys of
// package audience. Opened counts the opens that succeeded.
type Sealing struct {
	Broadcast string
	Opened    atomic.Int64
	epoch     *audience.Epoch
}

// NewSealing makes the keys of one epoch of a broadcast of its own.
func NewSealing(t testing.TB) *Sealing {
	t.Helper()
	var seed [32]byte
	r := rand.NewChaCha8(seed)
	key, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	broadcast := id.String() + ".sealtest"
	secret, err := audience.NewBroadcastSecret(r)
	if err != nil {
		t.Fatal(err)
	}
	e, err := audience.NewEpoch(r, broadcast, 1, secret)
	if err != nil {
		t.Fatal(err)
	}
	return &Sealing{Broadcast: broadcast, epoch: e}
}

// Seal returns a sealed copy of c, of the Sealing's broadcast (nil, and
// the test fails, if it cannot: it may be called from any goroutine).
func (s *Sealing) Seal(t testing.TB, c *chunk.Chunk) *chunk.Chunk {
	t.Helper()
	sealed := &chunk.Chunk{Broadcast: s.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Duration: c.Duration,
		Flags: c.Flags, Payload: c.Payload}
	if err := s.epoch.SealChunk(sealed); err != nil {
		t.Errorf("seal chunk %d: %v", c.Seq, err)
		return nil
	}
	return sealed
}

// Open is media.Opener's.
func (s *Sealing) Open(dst []byte, c *chunk.Chunk) ([]byte, error) {
	plain, err := s.epoch.Keys().OpenChunk(dst, c)
	if err == nil {
		s.Opened.Add(1)
	}
	return plain, err
}

// PlainLen is media.Opener's.
func (s *Sealing) PlainLen(c *chunk.Chunk) int { return max(len(c.Payload)-audience.Overhead, 0) }
