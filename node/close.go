package node

import (
	"net/http"
	"os"
	"slices"
	"time"
)

// Close ends the node's broadcasts (viewers are told), leaves every tree,
// stops the servers and the host. It is safe to call more than once.
//
// The order follows ownership: first what others reach this node through
// and what feeds on the rest — the broadcasts (each ends its publisher,
// says goodbye in its chat room, leaves its tree), the WHIP endpoint, the
// bootstraps' notices, the HTTP servers —; then the replays' fetching and
// bitswap; then the root context, which stops every background loop
// (GossipSub, the store's sweeper, the directory, NAT) and is waited for;
// then what those loops used: the store, the host, the temporary files.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		bs := slices.Clone(n.order)
		wh := n.whip
		n.mu.Unlock()
		for _, b := range bs {
			_ = b.Close()
		}
		if wh != nil {
			_ = wh.Close()
		}
		n.stopCommunity()
		for _, srv := range []*http.Server{n.httpSrv, n.httpsSrv} {
			if srv != nil {
				// Blocking playlist requests and players are cut: the
				// broadcasts are gone anyway.
				_ = srv.Close()
			}
		}
		n.closeReplay()
		n.cancel()
		n.wg.Wait()
		n.nat.Close()
		if n.store != nil {
			_ = n.store.Close()
		}
		if n.signal != nil {
			_ = n.signal.Close()
		}
		if n.host != nil {
			n.closeHost()
		}
		for _, dir := range []string{n.replayTmp, n.tmpDir} {
			if dir != "" {
				_ = os.RemoveAll(dir)
			}
		}
		_ = n.dirLock.Release() // last: the directory's stores are closed
	})
	return nil
}

// hostCloseWithin bounds how long Close waits for the libp2p host.
// go-libp2p v0.51's host Close can wait forever: an identify push arriving
// while the host closes blocks on a full event-bus subscription while it
// holds the lock AutoNAT's Close needs (seen in the bench, which bounds its
// wait the same way). A node that is shutting down says so and goes on, so
// the process still exits; the host's sockets go with it.
const hostCloseWithin = 15 * time.Second

func (n *Node) closeHost() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.host.Close()
	}()
	t := time.NewTimer(hostCloseWithin)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		n.log.Warn("the libp2p host is still closing; left to the process's exit", "after", hostCloseWithin)
	}
}
