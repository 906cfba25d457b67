package p2p

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
)

// handlerRef is what the host's stream handler holds of a Tree, cleared
// when the Tree closes. go-multistream's RemoveHandler leaves the removed
// handler in its slice's spare capacity when it was the last one added, so
// a handler holding the Tree itself kept a closed Tree, its window of
// chunks with it (about 9 MB at 2.5 Mb/s), for as long as the host lived:
// one per host that watched and left, and, in the bench, one per killed
// viewer (the 20-minute soak's RSS grew 290 MB to 2.6 GB).
type handlerRef struct{ t atomic.Pointer[Tree] }

func (r *handlerRef) handle(s network.Stream) {
	n := r.t.Load()
	if n == nil {
		_ = s.Reset()
		return
	}
	n.handleStream(s)
}
