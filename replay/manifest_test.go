package replay

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/replaypb"
)

// testManifest lists n chunks of b, the first an init.
func testManifest(b *broadcaster, start time.Time, n int) (*Manifest, []*chunk.Chunk) {
	m := &Manifest{Broadcast: b.id, Title: "a test", Started: start, Comments: []byte{0x0a, 0x00}}
	var chunks []*chunk.Chunk
	for i := range n {
		c := b.chunk(uint64(i), start.Add(time.Duration(i)*200*time.Millisecond), 300)
		e := Entry{Seq: c.Seq, Wallclock: time.Unix(0, c.Wallclock), Duration: time.Duration(c.Duration), Flags: c.Flags}
		if i == 0 {
			c = &chunk.Chunk{Broadcast: b.id, Wallclock: start.UnixNano(), Flags: chunk.FlagInit, Payload: []byte("init")}
			c.Sign(b.key)
			e = Entry{Wallclock: start, Flags: chunk.FlagInit, Init: c.Payload}
		}
		blk := c.Bytes()
		e.CID, e.Size = CIDOf(blk), len(blk)
		m.Chunks = append(m.Chunks, e)
		chunks = append(chunks, c)
	}
	m.Ended = start.Add(time.Duration(n) * 200 * time.Millisecond)
	return m, chunks
}

func manifestSeeds() map[string][]byte {
	b := newBroadcaster("12D3KooWseed.abcd", 7)
	m, _ := testManifest(b, time.Unix(1700000000, 0), 4)
	signed, _ := SignManifest(m, b.key)
	m.HeartsFrom, m.Hearts = m.Started.Add(time.Second), []uint32{0, 3, 0, 1}
	withHearts, _ := SignManifest(m, b.key)
	m.HeartsFrom, m.Hearts, m.SealedHearts = time.Time{}, nil, []byte("a private broadcast's hearts, sealed")
	sealed, _ := SignManifest(m, b.key)
	return map[string][]byte{"manifest": signed, "empty": {}, "half": signed[:len(signed)/2], "hearts": withHearts,
		"sealed-hearts": sealed}
}

func heartsSeeds() map[string][]byte {
	from := time.Unix(1700000000, 0)
	return map[string][]byte{
		"hearts":    MarshalHearts(from, []uint32{0, 3, 0, 1}),
		"empty":     {},
		"no-counts": MarshalHearts(from, nil),
		"no-from":   MarshalHearts(time.Time{}, []uint32{2}),
		"garbage":   []byte("\x0a\xff\xff"),
	}
}

// TestHearts: a private manifest's sealed hearts, once opened, decode as
// they were encoded; what a manifest's hearts may not be is refused.
func TestHearts(t *testing.T) {
	from := time.Unix(1700000000, 0)
	got, counts, err := ParseHearts(MarshalHearts(from, []uint32{5, 0, 2}))
	if err != nil || !got.Equal(from) || !slices.Equal(counts, []uint32{5, 0, 2}) {
		t.Fatalf("round trip: %v %v %v", got, counts, err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"no counts": MarshalHearts(from, nil),
		"no from":   MarshalHearts(time.Time{}, []uint32{2}),
		"too long":  MarshalHearts(from, make([]uint32, MaxHeartSeconds+1)),
		"garbage":   []byte("\x0a\xff\xff"),
	} {
		if _, _, err := ParseHearts(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzHearts: any bytes give hearts within a manifest's limits or an
// error wrapping ErrMalformed, never a panic.
func FuzzHearts(f *testing.F) {
	addSeeds(f, "FuzzHearts")
	f.Fuzz(func(t *testing.T, b []byte) {
		from, counts, err := ParseHearts(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if from.IsZero() || len(counts) == 0 || len(counts) > MaxHeartSeconds {
			t.Fatalf("let through hearts from %v, %d seconds", from, len(counts))
		}
		again, counts2, err := ParseHearts(MarshalHearts(from, counts))
		if err != nil || !again.Equal(from) || !slices.Equal(counts, counts2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestManifestRoundTrip(t *testing.T) {
	b := newBroadcaster("b.x", 1)
	m, chunks := testManifest(b, time.Unix(1700000000, 0), 20)
	m.HeartsFrom, m.Hearts = m.Started.Add(2*time.Second), []uint32{5, 0, 0, 2}
	m.SealedHearts = []byte("sealed")
	signed, err := SignManifest(m, b.key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(signed, b.id, b.pub)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != m.Title || !got.Started.Equal(m.Started) || !got.Ended.Equal(m.Ended) || len(got.Chunks) != 20 ||
		!bytes.Equal(got.Comments, m.Comments) || string(got.Chunks[0].Init) != "init" ||
		!got.HeartsFrom.Equal(m.HeartsFrom) || !slices.Equal(got.Hearts, m.Hearts) || string(got.SealedHearts) != "sealed" {
		t.Fatalf("decoded %+v", got)
	}
	for i, c := range chunks {
		e := got.Chunks[i]
		if !e.CID.Equals(CIDOf(c.Bytes())) {
			t.Fatalf("chunk %d: CID", i)
		}
		if err := got.Check(e, c); err != nil {
			t.Fatal(err)
		}
	}
	if d := got.Duration(); d != 19*200*time.Millisecond {
		t.Fatalf("duration %v", d)
	}
	// Another broadcast's ID, another key, a changed byte: refused.
	if _, err := DecodeManifest(signed, "b.y", b.pub); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other broadcast: %v", err)
	}
	if _, err := DecodeManifest(signed, b.id, newBroadcaster("b.x", 2).pub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other key: %v", err)
	}
	bad := bytes.Clone(signed)
	bad[len(bad)/2] ^= 1
	if _, err := DecodeManifest(bad, b.id, b.pub); err == nil {
		t.Fatal("an altered manifest was accepted")
	}
	// A chunk that is not the one listed.
	if err := got.Check(got.Chunks[3], chunks[4]); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong chunk: %v", err)
	}
}

func TestManifestStoredUntilExpiry(t *testing.T) {
	clk := newClock()
	b := newBroadcaster("b.x", 1)
	dir := t.TempDir()
	cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(b)}
	s := openStore(t, cfg)
	m, _ := testManifest(b, clk.Now(), 5)
	signed, _ := SignManifest(m, b.key)
	if err := s.PutManifest(t.Context(), m, signed); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = openStore(t, cfg)
	got, err := s.Manifest(t.Context(), b.id)
	if err != nil || !bytes.Equal(got, signed) {
		t.Fatalf("manifest after restart: %v", err)
	}
	if r := s.Replays(); len(r) != 1 || r[0] != b.id {
		t.Fatalf("replays %v", r)
	}
	clk.now = m.Ended.Add(DefaultTTL)
	if _, err := s.Manifest(t.Context(), b.id); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired manifest: %v", err)
	}
	if len(s.Replays()) != 0 {
		t.Fatal("an expired replay is listed")
	}
	if err := s.PutManifest(t.Context(), m, signed); !errors.Is(err, ErrExpired) {
		t.Fatalf("storing an expired manifest: %v", err)
	}
	if _, err := s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	clk.now = m.Started
	s = openStore(t, cfg)
	if _, err := s.Manifest(t.Context(), b.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("manifest after sweep and restart: %v", err)
	}
}

// TestManifestHeartsBounded: a manifest's hearts are refused beyond 36
// hours of seconds, or without the second they start from.
func TestManifestHeartsBounded(t *testing.T) {
	b := newBroadcaster("b.x", 1)
	for _, c := range []struct {
		name   string
		from   time.Time
		hearts []uint32
	}{
		{"too many seconds", time.Unix(1700000000, 0), make([]uint32, MaxHeartSeconds+1)},
		{"no first second", time.Time{}, []uint32{1}},
	} {
		m, _ := testManifest(b, time.Unix(1700000000, 0), 2)
		m.HeartsFrom, m.Hearts = c.from, c.hearts
		signed, err := SignManifest(m, b.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeManifest(signed, b.id, b.pub); err == nil {
			t.Fatalf("%s: accepted", c.name)
		}
	}
}

// FuzzManifest: any bytes give a verified manifest or an error, never a
// panic. (The fuzzer cannot forge the signature, so it also walks the
// body decoder directly.)
func FuzzManifest(f *testing.F) {
	for _, in := range manifestSeeds() {
		f.Add(in)
	}
	b := newBroadcaster("12D3KooWseed.abcd", 7)
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := DecodeManifest(in, b.id, b.pub); err == nil {
			if _, err := SignManifest(m, b.key); err != nil {
				t.Fatal(err)
			}
		}
		var m Manifest
		if err := m.unmarshal(in); err == nil {
			body, err := m.marshal()
			if err != nil {
				t.Fatalf("a decoded manifest does not encode: %v", err)
			}
			var again Manifest
			if err := again.unmarshal(body); err != nil {
				t.Fatalf("re-encoded manifest does not decode: %v", err)
			}
			if len(again.Chunks) != len(m.Chunks) || again.Broadcast != m.Broadcast || !slices.Equal(again.Hearts, m.Hearts) ||
				!bytes.Equal(again.SealedHearts, m.SealedHearts) {
				t.Fatal("round trip changed the manifest")
			}
		}
	})
}

// handMarshal is the body as the hand-written codec (before the generated
// one) wrote it: every entry's numbers even when zero.
func handMarshal(m *Manifest) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, m.Broadcast)
	b = pbwire.AppendString(b, 2, m.Title)
	b = pbwire.AppendVarint(b, 3, uint64(pbwire.UnixNano(m.Started)))
	b = pbwire.AppendVarint(b, 4, uint64(pbwire.UnixNano(m.Ended)))
	for _, c := range m.Chunks {
		e := protowire.AppendTag(nil, 1, protowire.BytesType)
		e = protowire.AppendBytes(e, c.CID.Bytes())
		for j, v := range []uint64{c.Seq, uint64(c.Wallclock.UnixNano()), uint64(c.Duration), uint64(c.Flags), uint64(c.Size)} {
			e = protowire.AppendTag(e, protowire.Number(j+2), protowire.VarintType)
			e = protowire.AppendVarint(e, v)
		}
		e = pbwire.AppendBytes(e, 7, c.Init)
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return pbwire.AppendBytes(b, 6, m.Comments)
}

// TestManifestOfTheHandCodec: a manifest signed by the hand-written codec
// that came before the generated one (committed as a fuzz seed; it wrote
// zero fields the generated code leaves out) still verifies and decodes to
// every byte it said, so stores written before and nodes not yet updated
// keep working with this one; and the generated code reads what it writes.
func TestManifestOfTheHandCodec(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzManifest", "seed-manifest"))
	if err != nil {
		t.Fatal(err)
	}
	_, quoted, _ := strings.Cut(strings.TrimSpace(string(raw)), "[]byte(")
	old, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	if err != nil {
		t.Fatal(err)
	}
	b := newBroadcaster("12D3KooWseed.abcd", 7)
	got, err := DecodeManifest([]byte(old), b.id, b.pub)
	if err != nil {
		t.Fatal(err)
	}
	var signed replaypb.SignedManifest
	if err := proto.Unmarshal([]byte(old), &signed); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(handMarshal(got), signed.Body) {
		t.Fatal("the manifest decoded from the hand codec's bytes is not the one they said")
	}
	if got.Title != "a test" || len(got.Chunks) != 4 || got.Chunks[0].Flags != chunk.FlagInit || string(got.Chunks[0].Init) != "init" {
		t.Fatalf("decoded %+v", got)
	}
	again, err := SignManifest(got, b.key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeManifest(again, b.id, b.pub)
	if err != nil || !bytes.Equal(handMarshal(back), signed.Body) {
		t.Fatalf("the generated encoding does not read back the same: %v", err)
	}
}
