package p2p

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
)

// handlerRef is what the host's stream handler holds of a Tree, cleared
// when the Tree closes. go-multistream's RemoveHandler leaves the removed
// handler in its slice's spare capacity when it was the last one added, so
// a handler holding the Tree itself kept a closed Tree, its window of
// chunks with it (about 9 MB at 2.5 Mb/s), until the host's next handler
// took that slot: one at a time on a node's host, but one per killed
// viewer in the bench, which keeps the closed hosts for its report (the
// 20-minute soak's RSS grew from 290 MB to 2.6 GB).
type handlerRef struct{ t atomic.Pointer[Tree] }

func (r *handlerRef) handle(s network.Stream) {
	n := r.t.Load()
	if n == nil {
		_ = s.Reset()
		return
	}
	n.handleStream(s)
}
