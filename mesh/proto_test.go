package mesh

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/proto/chunkpb"
	"github.com/peerscope/peerscope/proto/meshpb"
)

// The hand-written codec (codec.go) is held to proto/mesh.proto here: what
// it writes the generated code reads as the same message, and what the
// generated code writes it reads. BenchmarkCodecVsGenerated says why it is
// kept (docs/BENCHMARKS.md).

// toPB is m as the generated code's message.
func toPB(m *Message) *meshpb.Message {
	pb := &meshpb.Message{Type: meshpb.Type(m.Type), Seq: m.Seq, Count: m.Count, Time: m.Time,
		Capacity: m.Capacity, Free: m.Free, Subtree: m.Subtree, Depth: m.Depth, Addrs: m.Addrs,
		Reason: meshpb.Reason(m.Reason), Flags: m.Flags, Lost: string(m.Lost), Parent: string(m.Parent)}
	if c := m.Chunk; c != nil {
		pb.Chunk = &chunkpb.Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Flags: uint32(c.Flags),
			Payload: c.Payload, Signature: c.Signature, Duration: c.Duration}
	}
	for i := range m.Path {
		pb.Path = append(pb.Path, peerToPB(&m.Path[i]))
	}
	for _, c := range m.Candidates {
		pb.Candidates = append(pb.Candidates, &meshpb.Candidate{Peer: peerToPB(&c.PeerInfo), Depth: c.Depth, Free: c.Free, Proven: c.Proven})
	}
	for _, c := range m.Vouches {
		pb.Vouches = append(pb.Vouches, &meshpb.Candidate{Peer: peerToPB(&c.PeerInfo), Depth: c.Depth, Free: c.Free, Proven: c.Proven})
	}
	for _, c := range m.Counters {
		pb.Counters = append(pb.Counters, &meshpb.Counter{Name: c.Name, Value: c.Value})
	}
	return pb
}

func peerToPB(p *PeerInfo) *meshpb.PeerInfo {
	return &meshpb.PeerInfo{Id: string(p.ID), Addrs: p.Addrs}
}

// fromPB is the generated code's message as a Message. A reason is a byte
// in Go, as the hand decoder reads it.
func fromPB(pb *meshpb.Message) *Message {
	m := &Message{Type: MsgType(pb.Type), Seq: pb.Seq, Count: pb.Count, Time: pb.Time,
		Capacity: pb.Capacity, Free: pb.Free, Subtree: pb.Subtree, Depth: pb.Depth, Addrs: pb.Addrs,
		Reason: Reason(uint8(pb.Reason)), Flags: pb.Flags, Lost: PeerID(pb.Lost), Parent: PeerID(pb.Parent)}
	if c := pb.Chunk; c != nil {
		m.Chunk = &chunk.Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Flags: chunk.Flags(c.Flags),
			Payload: c.Payload, Signature: c.Signature, Duration: c.Duration}
	}
	for _, p := range pb.Path {
		m.Path = append(m.Path, peerFromPB(p))
	}
	for _, c := range pb.Candidates {
		m.Candidates = append(m.Candidates, Candidate{PeerInfo: peerFromPB(c.Peer), Depth: c.Depth, Free: c.Free, Proven: c.Proven})
	}
	for _, c := range pb.Vouches {
		m.Vouches = append(m.Vouches, Candidate{PeerInfo: peerFromPB(c.Peer), Depth: c.Depth, Free: c.Free, Proven: c.Proven})
	}
	for _, c := range pb.Counters {
		m.Counters = append(m.Counters, CounterValue{Name: c.Name, Value: c.Value})
	}
	return m
}

func peerFromPB(p *meshpb.PeerInfo) PeerInfo {
	return PeerInfo{ID: PeerID(p.GetId()), Addrs: p.GetAddrs()}
}

// genWritesSameBytes reports whether the generated code encodes m to the
// very bytes the hand codec does: it leaves out what proto3 calls empty
// (an empty peer ID, an empty chunk broadcast, payload or signature) where
// the hand codec writes it, and it writes a chunk's fields in number order,
// where the chunk's canonical form puts the duration before the payload.
func genWritesSameBytes(m *Message) bool {
	if c := m.Chunk; c != nil && (c.Duration != 0 || c.Broadcast == "" || len(c.Payload) == 0 || len(c.Signature) == 0) {
		return false
	}
	for _, p := range m.Path {
		if p.ID == "" {
			return false
		}
	}
	for _, c := range append(slices.Clone(m.Candidates), m.Vouches...) {
		if c.ID == "" {
			return false
		}
	}
	return true
}

// randomText returns up to n runes, some of them beyond ASCII.
func randomText(rng *rand.Rand, n int) string {
	runes := []rune("ab1/.:-_éœ♥🎥")
	s := make([]rune, rng.IntN(n+1))
	for i := range s {
		s[i] = runes[rng.IntN(len(runes))]
	}
	return string(s)
}

func randomPeer(rng *rand.Rand) PeerInfo {
	p := PeerInfo{ID: PeerID(randomText(rng, 20))}
	for range rng.IntN(3) {
		p.Addrs = append(p.Addrs, randomText(rng, 30))
	}
	return p
}

// randomMessage fills a random subset of the fields, with values of every
// size (a varint of 1 to 10 bytes), whatever the type would use.
func randomMessage(rng *rand.Rand) *Message {
	u64 := func() uint64 { return rng.Uint64() >> rng.IntN(65) }
	u32 := func() uint32 { return uint32(u64()) }
	m := &Message{Type: MsgType(1 + rng.IntN(int(maxMsgType)-1)), Seq: u64(), Count: u32(), Time: int64(u64()),
		Capacity: u32(), Free: u32(), Subtree: u32(), Depth: u32(), Reason: Reason(rng.IntN(int(ReasonNoImprove) + 1)),
		Flags: u32(), Lost: PeerID(randomText(rng, 10)), Parent: PeerID(randomText(rng, 10))}
	if m.Type == MsgChunk || rng.IntN(4) == 0 {
		m.Chunk = &chunk.Chunk{Broadcast: randomText(rng, 24), Seq: u64(), Wallclock: int64(u64()),
			Flags: chunk.Flags(u32()), Payload: testPayload(rng.IntN(400)), Signature: testPayload(rng.IntN(65))}
		if rng.IntN(2) == 0 {
			m.Chunk.Duration = int64(u64())
		}
	}
	for range rng.IntN(4) {
		m.Path = append(m.Path, randomPeer(rng))
	}
	for range rng.IntN(4) {
		m.Candidates = append(m.Candidates, Candidate{PeerInfo: randomPeer(rng), Depth: u32(), Free: u32()})
	}
	for range rng.IntN(3) {
		m.Vouches = append(m.Vouches, Candidate{PeerInfo: randomPeer(rng), Depth: u32(), Proven: u32()})
	}
	for range rng.IntN(3) {
		m.Addrs = append(m.Addrs, randomText(rng, 30))
	}
	for range rng.IntN(4) {
		m.Counters = append(m.Counters, CounterValue{Name: randomText(rng, 12), Value: u64()})
	}
	return m
}

// TestCodecMatchesProto holds the hand-written codec to proto/mesh.proto:
// every message of the codec table and random ones, encoded by hand, are
// read by the generated code as the same message, and encoded by the
// generated code, are read by hand as the same message; where proto3's
// rules give one encoding, both write the same bytes.
func TestCodecMatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*Message
	for _, tc := range codecCases() {
		all = append(all, &tc.msg)
	}
	for range 500 {
		all = append(all, randomMessage(rng))
	}
	same := 0
	for i, m := range all {
		hand := m.Marshal(nil)
		var pb meshpb.Message
		if err := proto.Unmarshal(hand, &pb); err != nil {
			t.Fatalf("message %d: the generated code refuses our encoding: %v\n%s", i, err, describe(m))
		}
		if got := fromPB(&pb); !equalMessages(got, m) {
			t.Fatalf("message %d: the generated code reads\n%s\nwe wrote\n%s", i, describe(got), describe(m))
		}
		gen, err := proto.MarshalOptions{Deterministic: true}.Marshal(toPB(m))
		if err != nil {
			t.Fatalf("message %d: the generated code cannot encode it: %v", i, err)
		}
		var back Message
		if err := back.Unmarshal(gen); err != nil {
			t.Fatalf("message %d: we refuse the generated encoding: %v\n%s", i, err, describe(m))
		}
		if !equalMessages(&back, m) {
			t.Fatalf("message %d: the generated encoding decodes to\n%s\nwant\n%s", i, describe(&back), describe(m))
		}
		if genWritesSameBytes(m) {
			same++
			if !bytes.Equal(gen, hand) {
				t.Fatalf("message %d: the generated code and ours write different bytes\n gen %x\nhand %x", i, gen, hand)
			}
		}
	}
	if same < len(all)/4 {
		t.Fatalf("only %d of %d messages compared byte for byte", same, len(all))
	}
}

// BenchmarkCodecVsGenerated compares the hand codec with the generated one,
// each as the tree would use it: encoding a message to a frame buffer and
// decoding one into a mesh.Message (for the generated code, with the
// conversion from and to its types that the state machine would need).
// The chunk message is a relay's hot path: a 62.5 KB chunk (200 ms of a
// 2.5 Mb/s stream) already encoded once, forwarded to a child.
func BenchmarkCodecVsGenerated(b *testing.B) {
	for _, name := range []string{"chunk/62.5KB", "status"} {
		msg := codecCase1(b, name)
		msg.Marshal(nil) // the chunk's encoding is cached, as on a relay
		hand := msg.Marshal(nil)
		b.Run(fmt.Sprintf("%s/hand/encode", name), func(b *testing.B) {
			b.SetBytes(int64(len(hand)))
			b.ReportAllocs()
			buf := make([]byte, 0, len(hand))
			for b.Loop() {
				buf = msg.Marshal(buf[:0])
			}
		})
		b.Run(fmt.Sprintf("%s/generated/encode", name), func(b *testing.B) {
			b.SetBytes(int64(len(hand)))
			b.ReportAllocs()
			buf := make([]byte, 0, len(hand))
			for b.Loop() {
				var err error
				if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], toPB(&msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/hand/decode", name), func(b *testing.B) {
			b.SetBytes(int64(len(hand)))
			b.ReportAllocs()
			for b.Loop() {
				var m Message
				if err := m.Unmarshal(hand); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/generated/decode", name), func(b *testing.B) {
			b.SetBytes(int64(len(hand)))
			b.ReportAllocs()
			for b.Loop() {
				var pb meshpb.Message
				if err := proto.Unmarshal(hand, &pb); err != nil {
					b.Fatal(err)
				}
				if fromPB(&pb).Type != msg.Type {
					b.Fatal("wrong type")
				}
			}
		})
	}
}
