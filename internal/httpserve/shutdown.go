package httpserve

import (
	"net"
	"net/http"
	"sync"
)

// CloseUnusedOnShutdown makes srv's Shutdown close at once the connections
// that have not yet sent a request. net/http counts such a connection as
// idle only once it is 5 s old, so a client that dialled one spare
// (Go's transport does, when many requests go at once) held every
// Shutdown with a 5 s deadline until it failed. A connection that has
// sent nothing has nothing in flight to wait for. It sets srv.ConnState
// (wrapping any already set); call it before Serve.
func CloseUnusedOnShutdown(srv *http.Server) {
	var mu sync.Mutex
	fresh := make(map[net.Conn]struct{})
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		if s == http.StateNew {
			fresh[c] = struct{}{}
		} else {
			delete(fresh, c)
		}
		mu.Unlock()
		if next != nil {
			next(c, s)
		}
	}
	// Shutdown runs this after it has closed the listeners: no new
	// connection comes after.
	srv.RegisterOnShutdown(func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range fresh {
			c.Close()
			delete(fresh, c)
		}
	})
}
