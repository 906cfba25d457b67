package peer

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"net/http"
	"strings"
	"sync"
)

// Script is the bundle: an IIFE that sets window.PeerscopePeer, whose
// start(options) joins a broadcast's tree (src/peer.js).
//
//go:embed dist/peer.js
var Script []byte

// gzipped is Script compressed once, at best compression, on first use.
var gzipped = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = zw.Write(Script)
	_ = zw.Close()
	return b.Bytes()
})

// Handler serves Script as JavaScript, gzipped to a browser that takes it
// (about 140 KB instead of 475). The page asks for it only when it plays
// from the tree, so a page that plays over WHEP or LL-HLS never loads it.
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
		h.Set("Vary", "Accept-Encoding")
		body := Script
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			body = gzipped()
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
