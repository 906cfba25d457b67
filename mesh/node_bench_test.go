package mesh

import (
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// BenchmarkRelayChunk measures the state machine's whole hot path for one
// 62.5 KB chunk (200 ms of a 2.5 Mb/s stream) at a relay with three
// children: verification, the window, delivery and three forwards.
func BenchmarkRelayChunk(b *testing.B) {
	for _, verify := range []string{"ed25519", "skip"} {
		b.Run(verify, func(b *testing.B) {
			pub, priv, _ := ed25519.GenerateKey(rand.NewChaCha8([32]byte{2}))
			cfg := DefaultConfig()
			cfg.Self, cfg.Root, cfg.Broadcast, cfg.Key, cfg.Slots = PeerInfo{ID: "relay"}, PeerInfo{ID: "root"}, "b", pub, 3
			if verify == "skip" {
				cfg.Verify = func(*chunk.Chunk) error { return nil }
			}
			n, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Unix(0, 0)
			// Join under the root (a ping, the root's pong, an attach, its
			// accept), and adopt three children.
			n.Tick(now)
			n.Ready()
			_ = n.Step(now, "root", &Message{Type: MsgPong, Time: now.UnixNano(), Free: 1})
			if rd := n.Ready(); len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != MsgAttach {
				b.Fatalf("no attach after the root's pong: %+v", rd.Messages)
			}
			_ = n.Step(now, "root", &Message{Type: MsgAccept, Path: []PeerInfo{{ID: "root"}}})
			for _, c := range []PeerID{"c1", "c2", "c3"} {
				_ = n.Step(now, c, &Message{Type: MsgAttach})
			}
			n.Ready()
			// One distinct chunk per iteration (so none is a duplicate), signed
			// before the clock starts; the payload is shared.
			chunks := make([]*chunk.Chunk, b.N)
			payload := make([]byte, 62_500)
			for i := range chunks {
				chunks[i] = &chunk.Chunk{Broadcast: "b", Seq: uint64(i), Payload: payload}
				if verify == "ed25519" {
					chunks[i].Sign(priv)
				}
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := chunks[i]
				now = now.Add(time.Millisecond)
				if err := n.Step(now, "root", &Message{Type: MsgChunk, Chunk: c}); err != nil {
					b.Fatal(err)
				}
				if rd := n.Ready(); len(rd.Messages) != 3 {
					b.Fatalf("forwarded %d times, want 3", len(rd.Messages))
				}
			}
		})
	}
}
