package cmaf

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
	"github.com/peerscope/peerscope/media"
)

// FuzzPackager runs scripts decoded from the fuzz input (see decodeOps)
// through a packager: whatever the input, it must not panic, its errors
// must wrap media.ErrBadInput, and everything it emits must parse back with
// strictly increasing timestamps per track. The corpus is seeded with every
// case of the table, and committed under testdata/fuzz/FuzzPackager.
func FuzzPackager(f *testing.F) {
	for _, c := range cases {
		f.Add(encodeOps(c.ops))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ops := decodeOps(b)
		r := run(Config{}, ops)
		if r.err != nil && !errors.Is(r.err, media.ErrBadInput) {
			t.Fatalf("error %v does not wrap media.ErrBadInput", r.err)
		}
		checkResult(t, Config{}, r, true)
	})
}

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the table's scripts to testdata/fuzz/FuzzPackager/seed-* and exit the test")

// TestWriteFuzzSeeds writes every case's script as a seed corpus file when
// run with -write-fuzz-seeds, leaving existing files alone: committed seeds
// pin earlier encodings.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/FuzzPackager/seed-*")
	}
	for _, c := range cases {
		name := "seed-" + strings.NewReplacer(" ", "-", "(", "", ")", "", ".", "").Replace(c.name)
		fuzzseed.Write(t, "FuzzPackager", name, encodeOps(c.ops))
	}
}
