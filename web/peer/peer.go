package peer

import (
	_ "embed"
	"net/http"
)

// Script is the bundle: an IIFE that sets window.PeerscopePeer, whose
// start(options) joins a broadcast's tree (src/peer.js).
//
//go:embed dist/peer.js
var Script []byte

// Handler serves Script as JavaScript. The page asks for it only when it
// plays from the tree, so a page that plays over WHEP or LL-HLS never
// loads its 140 KB (gzipped).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(Script)
	})
}
