package replay

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the seed tables to testdata/fuzz/<FuzzName>/seed-* and exit the test")

// fuzzSeeds are the inputs each fuzz test starts from, also committed as
// its corpus (go test -run TestWriteFuzzSeeds -write-fuzz-seeds).
func fuzzSeeds() map[string]map[string][]byte {
	b := newBroadcaster("12D3KooWseed.abcd", 7)
	c := b.chunk(42, time.Unix(1700000000, 0), 64)
	blk := EncodeChunk(c)
	e := &entry{b: &bcast{id: "12D3KooWseed.abcd"}, seq: 42, wall: 1700000000e9, size: 123, flags: 1}
	return map[string]map[string][]byte{
		"FuzzDecodeChunk": {
			"chunk":     blk,
			"truncated": blk[:len(blk)/2],
			"empty":     {},
			"tag-only":  {0x0a},
		},
		"FuzzIndexRecord": {
			"entry": marshalEntry(e),
			"bad":   {0x08, 0xff},
		},
		"FuzzManifest": manifestSeeds(),
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/*/seed-*")
	}
	for fuzz, seeds := range fuzzSeeds() {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, in := range seeds {
			body := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", in)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func addSeeds(f *testing.F, name string) {
	for _, in := range fuzzSeeds()[name] {
		f.Add(in)
	}
}

// FuzzDecodeChunk: any bytes give a chunk or ErrMalformed, never a panic;
// a decoded chunk re-encodes to a block that decodes to the same chunk.
func FuzzDecodeChunk(f *testing.F) {
	addSeeds(f, "FuzzDecodeChunk")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChunk(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := DecodeChunk(EncodeChunk(c))
		if err != nil {
			t.Fatalf("re-encoded chunk does not decode: %v", err)
		}
		if again.Broadcast != c.Broadcast || again.Seq != c.Seq || again.Wallclock != c.Wallclock ||
			again.Flags != c.Flags || again.Duration != c.Duration ||
			!bytes.Equal(again.Payload, c.Payload) || !bytes.Equal(again.Signature, c.Signature) {
			t.Fatalf("round trip changed the chunk")
		}
	})
}

// FuzzIndexRecord: the index's chunk records, read back from disk.
func FuzzIndexRecord(f *testing.F) {
	addSeeds(f, "FuzzIndexRecord")
	f.Fuzz(func(t *testing.T, b []byte) {
		id, e, err := unmarshalEntry(b)
		if err != nil {
			return
		}
		e.b = &bcast{id: id}
		id2, e2, err := unmarshalEntry(marshalEntry(&e))
		if err != nil || id2 != id || e2.seq != e.seq || e2.wall != e.wall || e2.size != e.size || e2.flags != e.flags {
			t.Fatalf("round trip: %v", err)
		}
	})
}
