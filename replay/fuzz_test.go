package replay

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the seed tables to testdata/fuzz/<FuzzName>/seed-* and exit the test")

// fuzzSeeds are the inputs each fuzz test starts from, also committed as
// its corpus (go test -run TestWriteFuzzSeeds -write-fuzz-seeds).
func fuzzSeeds() map[string]map[string][]byte {
	e := &entry{b: &bcast{id: "12D3KooWseed.abcd"}, seq: 42, wall: 1700000000e9, size: 123, flags: 1}
	return map[string]map[string][]byte{
		"FuzzIndexRecord": {
			"entry": marshalEntry(e),
			"bad":   {0x08, 0xff},
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
