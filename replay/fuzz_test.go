package replay

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the seed tables to testdata/fuzz/<FuzzName>/seed-* and exit the test")

// fuzzSeeds are the inputs each fuzz test starts from, also committed as
// its corpus (go test -run TestWriteFuzzSeeds -write-fuzz-seeds).
func fuzzSeeds() map[string]map[string][]byte {
	e := &entry{b: &bcast{id: "12D3KooWseed.abcd"}, seq: 42, wall: 1700000000e9, size: 123, flags: 1}
	// A record of the flatfs store (no segment, format absent), and one
	// of a block in a segment.
	flat := marshalEntry(e)
	e.seg, e.off, e.recv = &segment{key: segKey{e.b.id, hourOf(e.wall)}}, 62_500*7, 1700000001e9
	return map[string]map[string][]byte{
		"FuzzIndexRecord": {
			"entry":          flat,
			"bad":            {0x08, 0xff},
			"segment":        marshalEntry(e),
			"segment-no-off": append(slices.Clone(flat), 0x48, 0x01),
			"format-2":       append(slices.Clone(flat), 0x48, 0x02),
		},
		"FuzzManifest": manifestSeeds(),
		"FuzzHearts":   heartsSeeds(),
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

// FuzzIndexRecord: the index's chunk records, read back from disk.
func FuzzIndexRecord(f *testing.F) {
	addSeeds(f, "FuzzIndexRecord")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := unmarshalEntry(b)
		if err != nil {
			return
		}
		if r.e.size < 0 || r.e.size > MaxBlockSize || r.e.off < 0 || r.e.off > maxOffset {
			t.Fatalf("decoded a range out of bounds: %d bytes at %d", r.e.size, r.e.off)
		}
		if r.format == formatFlatfs {
			r.hour, r.e.off = 0, 0 // not kept: a flatfs block is found by its CID
		}
		e := r.e
		e.b = &bcast{id: r.broadcast}
		if r.format == formatSegment {
			e.seg = &segment{key: segKey{r.broadcast, r.hour}}
		}
		r2, err := unmarshalEntry(marshalEntry(&e))
		if err != nil || r2.broadcast != r.broadcast || r2.e.seq != e.seq || r2.e.wall != e.wall || r2.e.size != e.size ||
			r2.e.flags != e.flags || r2.e.recv != e.recv || r2.format != r.format || r2.hour != r.hour || r2.e.off != e.off {
			t.Fatalf("round trip: %+v, %v, want %+v", r2, err, r)
		}
	})
}
