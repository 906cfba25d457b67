package audience

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/peerscope/peerscope/chunk"
)

// chunkCase is one chunk of a broadcast as media/publish makes them.
type chunkCase struct {
	name  string
	seq   uint64
	flags chunk.Flags
	size  int
}

// chunkCases is the one table of chunks that the unit, fuzz and benchmark
// tests share: a broadcast's chunks in the order they are sealed, with the
// sequence numbers media/publish gives them. An init carries the Seq of the
// part after it; a publisher that comes back sends another init; the empty
// end chunk carries the next, unused Seq, which an init may have taken.
func chunkCases() []chunkCase {
	return []chunkCase{
		{"init", 0, chunk.FlagInit, 716},
		{"keyframe", 0, chunk.FlagKeyframe, 3000},
		{"part", 1, 0, 1200},
		{"init-again", 2, chunk.FlagInit, 716},
		{"62.5KB", 2, chunk.FlagKeyframe, 62_500},
		{"init-last", 3, chunk.FlagInit, 716},
		{"end-empty", 3, chunk.FlagEnd, 0},
	}
}

func (c chunkCase) chunk(b string) *chunk.Chunk {
	return &chunk.Chunk{Broadcast: b, Seq: c.seq, Wallclock: 1_772_366_400_000_000_000 + int64(c.seq)*200e6,
		Duration: 200e6, Flags: c.flags, Payload: plaintext(c.size)}
}

// sealedCases seals and signs the table's chunks in one epoch.
func sealedCases(t testing.TB, e *Epoch) []*chunk.Chunk {
	t.Helper()
	s := chunkSigner(t)
	var out []*chunk.Chunk
	for _, tc := range chunkCases() {
		c := tc.chunk(e.Keys().Broadcast())
		if err := e.SealChunk(c); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		s.Sign(c)
		out = append(out, c)
	}
	return out
}

// TestChunkRoundTrip: a sealed, signed chunk travels as bytes, verifies
// with the broadcaster's key alone (what a relay does) and opens to its
// plaintext with the epoch's keys (what a member does).
func TestChunkRoundTrip(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	signer := chunkSigner(t)
	for i, c := range sealedCases(t, e) {
		tc := chunkCases()[i]
		t.Run(tc.name, func(t *testing.T) {
			if c.Epoch != 5 || len(c.Payload) != tc.size+Overhead {
				t.Fatalf("epoch %d, payload %d bytes", c.Epoch, len(c.Payload))
			}
			if tc.size > 32 && bytes.Contains(c.Payload, plaintext(tc.size)[:32]) {
				t.Fatal("the plaintext is in the sealed payload")
			}
			got, err := chunk.Decode(c.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Verify(broadcast, signer.PublicKey()); err != nil {
				t.Fatalf("a relay cannot verify: %v", err)
			}
			plain, err := e.Keys().OpenChunk(nil, got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, plaintext(tc.size)) {
				t.Fatal("opened another payload")
			}
		})
	}
}

// TestChunkFlippedBitsRefused: any bit flipped anywhere in a sealed chunk's
// encoding — header, ciphertext, tag or signature — is refused by the
// decoder, the signature (every relay) or the decryption (members).
func TestChunkFlippedBitsRefused(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	c := chunkCase{"part", 1, chunk.FlagKeyframe, 300}.chunk(broadcast)
	if err := e.SealChunk(c); err != nil {
		t.Fatal(err)
	}
	signer := chunkSigner(t)
	signer.Sign(c)
	enc := c.Bytes()
	for i := range 8 * len(enc) {
		got, err := chunk.Decode(flipBit(enc, i))
		if err == nil {
			err = got.Verify(broadcast, signer.PublicKey())
		}
		if err == nil {
			_, err = e.Keys().OpenChunk(nil, got)
		}
		if !isErr(err, chunk.ErrMalformed) && !isErr(err, chunk.ErrBadSignature) && !isErr(err, chunk.ErrWrongBroadcast) &&
			!isErr(err, ErrOpen) && !isErr(err, ErrWrongEpoch) {
			t.Fatalf("bit %d of %d flipped: %v", i, 8*len(enc), err)
		}
	}
}

// TestOpenRefusesAlteredHeader: a member's decryption alone, without the
// signature, refuses a chunk whose broadcast, epoch, seq, flags or
// ciphertext changed, bit by bit: they are the additional data, the nonce
// and the key's derivation. An epoch moved is refused even by the keys of
// that epoch derived from the same secrets.
func TestOpenRefusesAlteredHeader(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	sealed := chunkCase{"part", 1, chunk.FlagKeyframe, 300}.chunk(broadcast)
	if err := e.SealChunk(sealed); err != nil {
		t.Fatal(err)
	}
	try := func(what string, c *chunk.Chunk, want error) {
		t.Helper()
		keys := e.Keys()
		if c.Epoch != sealed.Epoch && c.Epoch != 0 {
			var err error
			if keys, err = DeriveKeys(broadcast, c.Epoch, e.secrets); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := keys.OpenChunk(nil, c); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	for i := range 64 {
		c := sealed.Clone()
		c.Seq ^= 1 << i
		try(fmt.Sprintf("seq bit %d", i), c, ErrOpen)
	}
	for i := range 32 {
		c := sealed.Clone()
		c.Flags ^= 1 << i
		try(fmt.Sprintf("flags bit %d", i), c, ErrOpen)
		c = sealed.Clone()
		c.Epoch ^= 1 << i
		try(fmt.Sprintf("epoch bit %d", i), c, ErrOpen)
	}
	for i := range 8 * len(sealed.Broadcast) {
		c := sealed.Clone()
		c.Broadcast = string(flipBit([]byte(sealed.Broadcast), i))
		try(fmt.Sprintf("broadcast bit %d", i), c, ErrWrongBroadcast)
	}
	for i := range 8 * len(sealed.Payload) {
		c := sealed.Clone()
		c.Payload = flipBit(sealed.Payload, i)
		try(fmt.Sprintf("payload bit %d", i), c, ErrOpen)
	}
	c := sealed.Clone()
	c.Epoch = 0
	try("made public", c, ErrWrongEpoch)
}

// TestChunkWrongEpochRefused: the keys of one epoch do not open another's
// chunks, whatever their numbers, and a public chunk is no epoch's.
func TestChunkWrongEpochRefused(t *testing.T) {
	e5, e6 := epoch(t, broadcast, 5, 1), epoch(t, broadcast, 6, 2)
	c := chunkCase{"part", 1, 0, 300}.chunk(broadcast)
	if err := e5.SealChunk(c); err != nil {
		t.Fatal(err)
	}
	if _, err := e6.Keys().OpenChunk(nil, c); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("epoch 6's keys on an epoch 5 chunk: %v", err)
	}
	relabelled := c.Clone()
	relabelled.Epoch = 6
	if _, err := e6.Keys().OpenChunk(nil, relabelled); !errors.Is(err, ErrOpen) {
		t.Fatalf("an epoch 5 chunk relabelled 6: %v", err)
	}
	public := chunkCase{"part", 1, 0, 300}.chunk(broadcast)
	if _, err := e5.Keys().OpenChunk(nil, public); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("a public chunk: %v", err)
	}
	other := epoch(t, otherCast, 5, 1)
	if _, err := other.Keys().OpenChunk(nil, c); !errors.Is(err, ErrWrongBroadcast) {
		t.Fatalf("another broadcast's keys: %v", err)
	}
}

// TestSealChunkRefuses: a chunk of another broadcast, one already sealed
// or signed, one too large, a seq beyond the nonce's 56 bits.
func TestSealChunkRefuses(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	signed := chunkCase{"part", 1, 0, 10}.chunk(broadcast)
	chunkSigner(t).Sign(signed)
	sealed := chunkCase{"part", 2, 0, 10}.chunk(broadcast)
	if err := e.SealChunk(sealed); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *chunk.Chunk
		want error
	}{
		{"another broadcast", chunkCase{"part", 3, 0, 10}.chunk(otherCast), ErrWrongBroadcast},
		{"signed", signed, ErrSealed},
		{"sealed", sealed, ErrSealed},
		{"too large", &chunk.Chunk{Broadcast: broadcast, Seq: 4, Payload: make([]byte, chunk.MaxPayloadSize-Overhead+1)}, ErrMalformed},
		{"seq over 56 bits", chunkCase{"part", 1 << 56, 0, 10}.chunk(broadcast), ErrMalformed},
	} {
		if err := e.SealChunk(tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := e.SealChunk(&chunk.Chunk{Broadcast: broadcast, Seq: 5, Payload: make([]byte, chunk.MaxPayloadSize-Overhead)}); err != nil {
		t.Errorf("the largest payload: %v", err)
	}
}
