package replay

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// allocated returns the disk space a file takes (its blocks, not its
// length).
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestExpiredRangesFreed: chunks that expire before the rest of their
// segment give their disk space back at the sweep (their ranges punched
// out), not when the segment goes up to an hour later; the rest still read.
func TestExpiredRangesFreed(t *testing.T) {
	clk := newClock()
	b := newBroadcaster("b", 1)
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verifier(b)})
	start := clk.Now()
	var ids []cid.Cid
	for i := range 120 { // one every 30 s: an hour, one segment
		clk.now = start.Add(time.Duration(i) * 30 * time.Second)
		id, err := s.Put(t.Context(), b.chunk(uint64(i), clk.Now(), 20_000))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	path, _, _ := blockRange(t, s, ids[0])
	before := allocated(t, path)
	clk.now = start.Add(DefaultTTL + 30*time.Minute - time.Second)
	if st, err := s.Sweep(t.Context()); err != nil || st.Chunks != 60 {
		t.Fatalf("sweep %+v, %v", st, err)
	}
	after := allocated(t, path)
	t.Logf("segment: %d bytes allocated before the sweep, %d after", before, after)
	if after > before*55/100 {
		t.Fatalf("%d of %d bytes still allocated after half the chunks expired", after, before)
	}
	for _, id := range ids[60:] {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
}
