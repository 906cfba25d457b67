package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/proto/chunkpb"
)

// TestCodecMatchesProto holds the hand-written codec to the schema in
// proto/chunk.proto: what it writes, the generated code reads as the same
// chunk, and what the generated code writes, it reads.
func TestCodecMatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := []*Chunk{}
	for _, tc := range cases() {
		all = append(all, tc.c)
	}
	for range 200 {
		c := &Chunk{Broadcast: string(bytes.Repeat([]byte("é1."), rng.IntN(12))), Seq: rng.Uint64() >> rng.IntN(64),
			Wallclock: int64(rng.Uint64()), Duration: int64(rng.Uint64() >> rng.IntN(64)),
			Flags: Flags(rng.Uint32() >> rng.IntN(32)), Payload: payload(rng.IntN(300)), Signature: payload(rng.IntN(65))}
		if rng.IntN(2) == 0 {
			c.Epoch = rng.Uint32() >> rng.IntN(32)
		}
		if rng.IntN(2) == 0 {
			c.Data, c.Parity, c.Stripe = rng.Uint32N(17), rng.Uint32N(17), rng.Uint32N(17)
			c.Length, c.Hashes = rng.Uint32N(MaxPayloadSize+1), payload(rng.IntN(17)*32)
		}
		all = append(all, c)
	}
	for _, c := range all {
		var pb chunkpb.Chunk
		if err := proto.Unmarshal(c.Bytes(), &pb); err != nil {
			t.Fatalf("the generated code refuses our encoding: %v", err)
		}
		if pb.Broadcast != c.Broadcast || pb.Seq != c.Seq || pb.Wallclock != c.Wallclock || pb.Duration != c.Duration ||
			Flags(pb.Flags) != c.Flags || pb.Epoch != c.Epoch || !bytes.Equal(pb.Payload, c.Payload) || !bytes.Equal(pb.Signature, c.Signature) ||
			pb.Data != c.Data || pb.Parity != c.Parity || pb.Stripe != c.Stripe || pb.Length != c.Length || !bytes.Equal(pb.Hashes, c.Hashes) {
			t.Fatalf("the generated code reads %v, we wrote %+v", &pb, c)
		}
		gen, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(gen)
		if err != nil {
			t.Fatalf("we refuse the generated encoding: %v", err)
		}
		if !same(back, c) || !bytes.Equal(back.Bytes(), c.Bytes()) {
			t.Fatal("the generated encoding decodes to another chunk")
		}
		if c.Duration == 0 && c.Epoch == 0 && c.Data == 0 && c.Parity == 0 && c.Stripe == 0 && c.Length == 0 &&
			len(c.Hashes) == 0 && len(c.Broadcast) > 0 && !bytes.Equal(gen, c.Bytes()) {
			// Without a duration or an epoch the canonical order is the
			// field order, and the generated code writes the same bytes (it
			// omits an empty broadcast, which the canonical form keeps).
			t.Fatal("the generated code and ours write different bytes for the same chunk")
		}
	}
}
