package audience

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// TestNonceNeverRepeats is the nonce scheme's proof, in three parts.
//
// Within one epoch (one key): a long broadcast as media/publish cuts it —
// an init carrying the Seq of the part after it, a publisher coming back
// with another init, keyframes, the empty end chunk on the next Seq after
// an init took it — is sealed, and no two chunks get the same nonce. (A
// second init on the same Seq, which media/publish warns of and the tree
// drops, is refused: TestNonceReuseRefused.)
//
// Across epochs: each epoch's key is new, even when a restarted broadcaster
// takes an epoch number it used before: the same header and plaintext seal
// to another ciphertext, which the old keys cannot open.
//
// The layout: distinct (epoch, kind, seq) give distinct nonces, up to the
// 56 bits of seq the sealer allows.
func TestNonceNeverRepeats(t *testing.T) {
	e := epoch(t, broadcast, 1, 1)
	seen := map[[12]byte]string{}
	seal := func(seq uint64, flags chunk.Flags) {
		t.Helper()
		c := &chunk.Chunk{Broadcast: broadcast, Seq: seq, Flags: flags, Payload: plaintext(32)}
		if err := e.SealChunk(c); err != nil {
			t.Fatalf("seq %d flags %d: %v", seq, flags, err)
		}
		n := chunkNonce(c.Epoch, c.Flags, c.Seq)
		what := chunkCase{seq: seq, flags: flags}.String()
		if prev, ok := seen[n]; ok {
			t.Fatalf("%s has the nonce of %s", what, prev)
		}
		seen[n] = what
	}
	var seq uint64
	for i := range 20_000 {
		if i%1000 == 0 {
			seal(seq, chunk.FlagInit) // the start, then a publisher coming back
		}
		var f chunk.Flags
		if i%10 == 0 {
			f = chunk.FlagKeyframe
		}
		seal(seq, f)
		seq++
	}
	seal(seq, chunk.FlagInit)
	seal(seq, chunk.FlagEnd) // the empty end chunk, on the init's Seq
	if len(seen) < 20_000 {
		t.Fatalf("%d nonces", len(seen))
	}

	// A restarted broadcaster that reuses epoch number 1: a new key.
	again := epoch(t, broadcast, 1, 2)
	a := &chunk.Chunk{Broadcast: broadcast, Seq: 7, Payload: plaintext(64)}
	b := a.Clone()
	first := epoch(t, broadcast, 1, 1)
	if err := first.SealChunk(a); err != nil {
		t.Fatal(err)
	}
	if err := again.SealChunk(b); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Payload, b.Payload) {
		t.Fatal("two epochs numbered 1 sealed the same chunk alike: the key was reused")
	}
	if _, err := first.Keys().OpenChunk(nil, b); !errors.Is(err, ErrOpen) {
		t.Fatalf("the old epoch's keys on the restarted one's chunk: %v", err)
	}

	// The layout is injective.
	layout := map[[12]byte][3]uint64{}
	for _, ep := range []uint32{1, 2, 1 << 31, ^uint32(0)} {
		for _, f := range []chunk.Flags{0, chunk.FlagKeyframe, chunk.FlagInit, chunk.FlagEnd, chunk.FlagInit | chunk.FlagEnd} {
			for _, s := range []uint64{0, 1, 255, 256, 1 << 32, 1<<48 + 1, maxSealSeq - 1, maxSealSeq} {
				n := chunkNonce(ep, f, s)
				k := [3]uint64{uint64(ep), uint64(chunkKind(f)), s}
				if prev, ok := layout[n]; ok && prev != k {
					t.Fatalf("(epoch, kind, seq) %v and %v share a nonce", prev, k)
				}
				layout[n] = k
			}
		}
	}
}

func (c chunkCase) String() string {
	return fmt.Sprintf("%s of seq %d", [...]string{"part", "init", "end"}[chunkKind(c.flags)], c.seq)
}

// TestNonceReuseRefused: an epoch refuses to seal a chunk whose nonce it
// has used — the same seq again of the same kind, or an older one — and the
// reason: two chunks under one key and nonce give away the XOR of their
// plaintexts, as the last check shows with the cipher's own keystream.
func TestNonceReuseRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first chunkCase
		again chunkCase
	}{
		{"part twice", chunkCase{seq: 4}, chunkCase{seq: 4}},
		{"part going back", chunkCase{seq: 4}, chunkCase{seq: 3}},
		{"keyframe after a part of its seq", chunkCase{seq: 4}, chunkCase{seq: 4, flags: chunk.FlagKeyframe}},
		{"init twice", chunkCase{seq: 4, flags: chunk.FlagInit}, chunkCase{seq: 4, flags: chunk.FlagInit}},
		{"end twice", chunkCase{seq: 4, flags: chunk.FlagEnd}, chunkCase{seq: 4, flags: chunk.FlagEnd}},
		{"end with a keyframe", chunkCase{seq: 4, flags: chunk.FlagEnd}, chunkCase{seq: 4, flags: chunk.FlagEnd | chunk.FlagKeyframe}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := epoch(t, broadcast, 9, 1)
			if err := e.SealChunk(tc.first.chunk(broadcast)); err != nil {
				t.Fatal(err)
			}
			c := tc.again.chunk(broadcast)
			if err := e.SealChunk(c); !errors.Is(err, ErrNonceReused) {
				t.Fatalf("%v, want ErrNonceReused", err)
			}
			if c.Epoch != 0 || !bytes.Equal(c.Payload, plaintext(tc.again.size)) {
				t.Fatal("a refused chunk was changed")
			}
		})
	}

	// Why: the same key and nonce twice.
	e := epoch(t, broadcast, 9, 1)
	p1, p2 := plaintext(64), bytes.Repeat([]byte("secret"), 11)[:64]
	nonce := chunkNonce(9, 0, 4)
	c1 := e.keys.video.Seal(nil, nonce[:], p1, nil)
	c2 := e.keys.video.Seal(nil, nonce[:], p2, nil)
	for i := range p1 {
		if c1[i]^c2[i] != p1[i]^p2[i] {
			t.Fatal("GCM under a reused nonce did not leak the XOR: the test is wrong")
		}
	}
}

// TestNextEpoch: epoch numbers grow; a restarted broadcaster that forgot
// its last number takes the current second, above every number it gave
// before (one a second at most, or prev+1 when they come faster); a clock
// gone back still gives prev+1.
func TestNextEpoch(t *testing.T) {
	now := uint32(t0.Unix())
	for _, tc := range []struct {
		name string
		prev uint32
		at   time.Time
		want uint32
	}{
		{"first", 0, t0, now},
		{"within the second", now, t0, now + 1},
		{"later", now, t0.Add(5 * time.Minute), now + 300},
		{"restarted, prev forgotten", 0, t0.Add(10 * time.Second), now + 10},
		{"clock gone back", now + 300, t0, now + 301},
		{"before 1970", 0, time.Unix(-5, 0), 1},
		{"spent", ^uint32(0), t0, 0},
		{"past 2106", 7, time.Unix(1<<33, 0), 8},
	} {
		if got := NextEpoch(tc.prev, tc.at); got != tc.want {
			t.Errorf("%s: NextEpoch(%d) = %d, want %d", tc.name, tc.prev, got, tc.want)
		}
	}
}
