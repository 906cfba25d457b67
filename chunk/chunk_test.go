package chunk

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

const testBroadcast = "12D3KooWtest.abcdefgh"

func signed(seq uint64, flags Flags, payload []byte) *Chunk {
	c := &Chunk{Broadcast: testBroadcast, Seq: seq, Wallclock: 1_760_000_000_123_456_789 + int64(seq)*200e6,
		Duration: 200e6, Flags: flags, Payload: payload}
	c.Sign(testKey)
	return c
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// cases is the one table of chunks the unit, fuzz and benchmark tests share.
func cases() []struct {
	name string
	c    *Chunk
} {
	return []struct {
		name string
		c    *Chunk
	}{
		{"small", signed(1, 0, payload(200))},
		{"init-seq0", signed(0, FlagInit, payload(700))},
		{"keyframe", signed(25, FlagKeyframe, payload(3000))},
		{"end-empty", signed(9999, FlagEnd, nil)},
		{"zero", &Chunk{}},
		{"62.5KB", signed(42, FlagKeyframe, payload(62_500))},
		{"negative-times", &Chunk{Broadcast: "b", Wallclock: -5, Duration: -1, Signature: []byte{1}}},
		{"private", private(26, FlagKeyframe, 7, payload(3016))},
		{"private-init", private(26, FlagInit, 1_760_000_000, payload(716))},
		{"private-end-empty", private(9999, FlagEnd, 0xffffffff, payload(16))},
		{"striped-whole", striped(30, FlagKeyframe, 4, 2, payload(3001))},
		{"fragment", fragment(striped(31, 0, 4, 2, payload(3001)), 5)},
		{"fragment-end-empty", fragment(striped(9999, FlagEnd, 4, 1, nil), 0)},
	}
}

// striped returns a whole striped chunk, signed.
func striped(seq uint64, flags Flags, n, p uint32, payload []byte) *Chunk {
	c := &Chunk{Broadcast: testBroadcast, Seq: seq, Wallclock: 1_760_000_000_123_456_789 + int64(seq)*200e6,
		Duration: 200e6, Flags: flags, Data: n, Parity: p, Payload: payload}
	c.Sign(testKey)
	return c
}

// fragment returns fragment k of a whole striped chunk.
func fragment(c *Chunk, k int) *Chunk {
	fs, err := c.Fragments()
	if err != nil {
		panic(err)
	}
	return fs[k]
}

// private returns a signed chunk of a private broadcast's epoch (its payload
// standing for ciphertext: sealing is package audience's).
func private(seq uint64, flags Flags, epoch uint32, payload []byte) *Chunk {
	c := &Chunk{Broadcast: testBroadcast, Seq: seq, Wallclock: 1_760_000_000_123_456_789 + int64(seq)*200e6,
		Duration: 200e6, Flags: flags, Epoch: epoch, Payload: payload}
	c.Sign(testKey)
	return c
}

func same(a, b *Chunk) bool {
	return a.Broadcast == b.Broadcast && a.Seq == b.Seq && a.Wallclock == b.Wallclock && a.Duration == b.Duration &&
		a.Flags == b.Flags && a.Epoch == b.Epoch && bytes.Equal(a.Payload, b.Payload) && bytes.Equal(a.Signature, b.Signature) &&
		a.Data == b.Data && a.Parity == b.Parity && a.Stripe == b.Stripe && a.Length == b.Length && bytes.Equal(a.Hashes, b.Hashes)
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.c.Bytes()
			if len(enc) != tc.c.Clone().Size() {
				t.Fatalf("Size %d, encoding %d bytes", tc.c.Clone().Size(), len(enc))
			}
			got, err := Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !same(got, tc.c) {
				t.Fatalf("decoded %+v, want %+v", got, tc.c)
			}
			if !bytes.Equal(got.Bytes(), enc) || len(enc) > 0 && &got.Bytes()[0] != &enc[0] {
				t.Fatal("a canonical chunk does not keep the bytes it came in")
			}
		})
	}
}

// TestEncodedOnce: a chunk is encoded when signed, and every later use
// shares those bytes; a decoded canonical chunk aliases what it came in.
func TestEncodedOnce(t *testing.T) {
	c := signed(3, FlagKeyframe, payload(5000))
	w := c.Bytes()
	if &c.Bytes()[0] != &w[0] {
		t.Fatal("the chunk was encoded twice")
	}
	got, err := Decode(w)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Payload[0] != &w[len(w)-len(got.Payload)-len(got.Signature)-2] {
		t.Fatal("a decoded chunk's payload was copied")
	}
	d := c.Clone()
	d.Seq = 4
	d.Sign(testKey)
	if bytes.Equal(d.Bytes(), w) {
		t.Fatal("signing a changed clone kept the old encoding")
	}
}

// TestNonCanonicalIsReencoded: a chunk that arrives with extra fields (a
// relay padding it), a field given twice, or its fields in another order is
// either refused or re-encoded in the canonical form, and its payload no
// longer holds on to the bytes it came in.
func TestNonCanonicalIsReencoded(t *testing.T) {
	c := signed(5, FlagKeyframe, payload(1000))
	canon := c.Bytes()
	pad := bytes.Repeat([]byte{0xAA}, 1<<20)
	padded := protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), canon...), 99, protowire.BytesType), pad)
	// The same fields, duration last.
	reordered := protowire.AppendTag(nil, 1, protowire.BytesType)
	reordered = protowire.AppendString(reordered, c.Broadcast)
	for _, f := range []struct {
		num protowire.Number
		v   uint64
	}{{2, c.Seq}, {3, uint64(c.Wallclock)}, {4, uint64(c.Flags)}} {
		reordered = protowire.AppendVarint(protowire.AppendTag(reordered, f.num, protowire.VarintType), f.v)
	}
	reordered = protowire.AppendBytes(protowire.AppendTag(reordered, 5, protowire.BytesType), c.Payload)
	reordered = protowire.AppendBytes(protowire.AppendTag(reordered, 6, protowire.BytesType), c.Signature)
	reordered = protowire.AppendVarint(protowire.AppendTag(reordered, 7, protowire.VarintType), uint64(c.Duration))

	for name, in := range map[string][]byte{"padded": padded, "reordered": reordered} {
		got, err := Decode(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !same(got, c) {
			t.Fatalf("%s: decoded another chunk", name)
		}
		if !bytes.Equal(got.Bytes(), canon) {
			t.Fatalf("%s: forwarded as %d bytes, not the canonical %d", name, len(got.Bytes()), len(canon))
		}
		for i := range in {
			if &in[i] == &got.Payload[0] {
				t.Fatalf("%s: payload aliases the input", name)
			}
		}
		if err := got.Verify(testBroadcast, testKey.Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	twice := append(append([]byte(nil), canon...), protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 6)...)
	if _, err := Decode(twice); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a field given twice: %v, want ErrMalformed", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	big := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), make([]byte, MaxPayloadSize+1))
	for name, in := range map[string][]byte{
		"truncated":      signed(1, 0, payload(100)).Bytes()[:50],
		"wrong-type":     protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 1),
		"flags-too-wide": protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1<<33),
		"epoch-too-wide": protowire.AppendVarint(protowire.AppendTag(nil, 8, protowire.VarintType), 1<<32),
		"epoch-bytes":    protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), []byte{1}),
		"epoch-twice": protowire.AppendVarint(protowire.AppendTag(
			protowire.AppendVarint(protowire.AppendTag(nil, 8, protowire.VarintType), 1), 8, protowire.VarintType), 2),
		"long-id":       protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), make([]byte, MaxBroadcastLen+1)),
		"not-utf8":      protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff, 0xfe}),
		"long-sig":      protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), make([]byte, MaxSignatureLen+1)),
		"big-payload":   big,
		"data-17":       protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), MaxFragments+1),
		"stripe-17":     protowire.AppendVarint(protowire.AppendTag(nil, 11, protowire.VarintType), MaxFragments+1),
		"length-big":    protowire.AppendVarint(protowire.AppendTag(nil, 12, protowire.VarintType), MaxPayloadSize+1),
		"hashes-long":   protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType), make([]byte, MaxFragments*32+1)),
		"hashes-varint": protowire.AppendVarint(protowire.AppendTag(nil, 13, protowire.VarintType), 1),
	} {
		if _, err := Decode(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestVerify(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	c := signed(7, FlagKeyframe, payload(300))
	if err := c.Verify(testBroadcast, pub); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify("other", pub); !errors.Is(err, ErrWrongBroadcast) {
		t.Fatalf("other broadcast: %v", err)
	}
	for name, change := range map[string]func(*Chunk){
		"seq":       func(c *Chunk) { c.Seq++ },
		"wallclock": func(c *Chunk) { c.Wallclock++ },
		"duration":  func(c *Chunk) { c.Duration++ },
		"flags":     func(c *Chunk) { c.Flags ^= FlagEnd },
		"epoch":     func(c *Chunk) { c.Epoch = 1 },
		"payload":   func(c *Chunk) { c.Payload = append(bytes.Clone(c.Payload[:10]), 'x') },
		"signature": func(c *Chunk) { c.Signature = append([]byte{c.Signature[0] ^ 1}, c.Signature[1:]...) },
	} {
		d := c.Clone()
		change(d)
		if err := d.Verify(testBroadcast, pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v, want ErrBadSignature", name, err)
		}
	}
}

// FuzzDecode: any bytes give a chunk or ErrMalformed, never a panic; a
// decoded chunk's encoding decodes to the same chunk and is a fixed point.
func FuzzDecode(f *testing.F) {
	for _, tc := range cases() {
		f.Add(tc.c.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		enc := c.Bytes()
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("the re-encoded chunk does not decode: %v", err)
		}
		if !same(again, c) || !bytes.Equal(again.Bytes(), enc) {
			t.Fatal("the round trip changed the chunk")
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, tc := range cases() {
		enc := tc.c.Bytes()
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEpochIsSigned: the epoch is under the signature, in a domain of its
// own, so a relay cannot move a private chunk to another epoch, pass it off
// as public by stripping the epoch (what a node that does not know the field
// does when it re-encodes the chunk), or mark a public chunk private.
func TestEpochIsSigned(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	priv := private(26, FlagKeyframe, 7, payload(300))
	if err := priv.Verify(testBroadcast, pub); err != nil {
		t.Fatal(err)
	}
	stripped := priv.Clone()
	stripped.Epoch = 0
	if got, err := Decode(stripped.Bytes()); err != nil || got.Epoch != 0 {
		t.Fatalf("stripped: %v", err)
	} else if err := got.Verify(testBroadcast, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("epoch stripped: %v, want ErrBadSignature", err)
	}
	// What a node without the field does: the generated code of the
	// schema before the epoch skips field 8, and the chunk is re-encoded.
	old := bytes.Clone(priv.Bytes())
	i := bytes.Index(old, protowire.AppendVarint(protowire.AppendTag(nil, 8, protowire.VarintType), 7))
	if i < 0 {
		t.Fatal("no epoch field in the encoding")
	}
	old = append(old[:i], old[i+2:]...)
	if got, err := Decode(old); err != nil {
		t.Fatal(err)
	} else if err := got.Verify(testBroadcast, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("epoch dropped from the bytes: %v, want ErrBadSignature", err)
	}
	moved := priv.Clone()
	moved.Epoch = 8
	if err := moved.Verify(testBroadcast, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another epoch: %v, want ErrBadSignature", err)
	}
	marked := signed(26, FlagKeyframe, payload(300)).Clone()
	marked.Epoch = 7
	if err := marked.Verify(testBroadcast, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a public chunk marked private: %v, want ErrBadSignature", err)
	}
	if !priv.IsPrivate() || signed(1, 0, nil).IsPrivate() {
		t.Error("IsPrivate")
	}
}

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "write the table's encodings under testdata/fuzz")

// TestWriteFuzzSeeds writes the table's encodings (those under 8 KiB) as
// FuzzDecode's seeds when run with -write-fuzz-seeds, leaving files that
// exist alone: the committed seeds pin earlier encodings.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/FuzzDecode/seed-*")
	}
	for _, tc := range cases() {
		if b := tc.c.Bytes(); len(b) <= 8<<10 {
			fuzzseed.Write(t, "FuzzDecode", fuzzseed.Name(tc.name), b)
		}
	}
}
