package audience

import (
	"testing"

	"github.com/peerscope/peerscope/chunk"
)

// The benchmarks take their chunks from chunkCases, the table the unit and
// fuzz tests share; docs/BENCHMARKS.md has the figures and the command.

// BenchmarkSealChunk: the broadcaster's cost per chunk, sealing only (the
// signature it adds anyway is BenchmarkSignChunk).
func BenchmarkSealChunk(b *testing.B) {
	for _, tc := range chunkCases() {
		b.Run(tc.name, func(b *testing.B) {
			e := epoch(b, broadcast, 5, 1)
			plain := plaintext(tc.size)
			c := &chunk.Chunk{Broadcast: broadcast, Flags: tc.flags}
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			for b.Loop() {
				c.Seq++
				c.Epoch, c.Payload = 0, plain
				if err := e.SealChunk(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenChunk: a member's cost per chunk, opening into a buffer it
// reuses.
func BenchmarkOpenChunk(b *testing.B) {
	e := epoch(b, broadcast, 5, 1)
	for i, c := range sealedCases(b, e) {
		tc := chunkCases()[i]
		b.Run(tc.name, func(b *testing.B) {
			keys := e.Keys()
			buf := make([]byte, 0, tc.size)
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			for b.Loop() {
				if _, err := keys.OpenChunk(buf[:0], c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenChunkNew: what a node's member does per chunk, opening into
// a new buffer (nil dst), since its players keep the plaintext.
func BenchmarkOpenChunkNew(b *testing.B) {
	e := epoch(b, broadcast, 5, 1)
	c := sealedCases(b, e)[4] // 62.5KB
	keys := e.Keys()
	b.ReportAllocs()
	b.SetBytes(int64(len(c.Payload) - Overhead))
	for b.Loop() {
		if _, err := keys.OpenChunk(nil, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignChunk and BenchmarkVerifyChunk are what every chunk costs
// already, public or private: the yardstick for the two above.
func BenchmarkSignChunk(b *testing.B) {
	s := chunkSigner(b)
	c := chunkCase{"62.5KB", 2, chunk.FlagKeyframe, 62_500}.chunk(broadcast)
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(c)
	}
}

func BenchmarkVerifyChunk(b *testing.B) {
	e := epoch(b, broadcast, 5, 1)
	c := sealedCases(b, e)[4] // 62.5KB
	pub := chunkSigner(b).PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Verify(broadcast, pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrap: the broadcaster's cost per member device per epoch.
func BenchmarkWrap(b *testing.B) {
	e := epoch(b, broadcast, 5, 1)
	k := device(b, alice, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Wrap(caster.key, k.Key, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenBundle: a member's cost per epoch: parse, check the
// signature and the recipient, decapsulate, derive the keys.
func BenchmarkOpenBundle(b *testing.B) {
	e := epoch(b, broadcast, 5, 1)
	k := device(b, alice, 1)
	bundle, err := e.Wrap(caster.key, k.Key, t0)
	if err != nil {
		b.Fatal(err)
	}
	wire := bundle.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParseBundle(wire)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Open(k, broadcast); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewDeviceKey(b *testing.B) {
	r := seededRand(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewDeviceKey(r, alice.key, t0, t0.Add(24*60*60*1e9)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChat: sealing and opening a 200-byte chat envelope.
func BenchmarkChat(b *testing.B) {
	keys := epoch(b, broadcast, 5, 1).Keys()
	msg := plaintext(200)
	r := seededRand(9)
	wire, err := keys.SealChat(r, alice.id, msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := keys.SealChat(r, alice.id, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, err := ParseSealed(wire)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := keys.OpenChat(alice.id, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
