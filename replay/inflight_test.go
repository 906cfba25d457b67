package replay

import (
	"sync"
	"testing"

	"github.com/peerscope/peerscope/chunk"
)

// TestReadWhilePutting: a reader that lists and reads a broadcast's chunks
// while they are being put (a member's test, bitswap serving a peer) never
// sees one whose block is not written yet, and no chunk is lost by it. The
// entry used to be listed before its block was on disk: the reader took the
// missing block for one gone from disk and forgot the chunk, which the put
// then wrote as an orphan (node's TestPrivateRemoval failed once in CI so).
func TestReadWhilePutting(t *testing.T) {
	clk := newClock()
	b := newBroadcaster("b1", 1)
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verifier(b)})
	ctx := t.Context()
	const n = 300
	chunks := make([]*chunk.Chunk, 0, n)
	for i := range n {
		chunks = append(chunks, b.chunk(uint64(i), clk.Now(), 20_000))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		for {
			for _, h := range s.Held(b.id) {
				if _, err := s.Chunk(ctx, h.CID); err != nil && readErr == nil {
					readErr = err
				}
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	for _, c := range chunks {
		if _, err := s.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Errorf("a listed chunk could not be read: %v", readErr)
	}
	if got := len(s.Held(b.id)); got != n {
		t.Errorf("the store holds %d of the %d chunks put", got, n)
	}
}
