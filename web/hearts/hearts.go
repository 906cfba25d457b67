// Package hearts is the one floating-hearts layer the studio (the go-live
// page, media/broadcaster) and the player (media/player, with chat/web's
// chat.js) both show: hearts.css, the layer and the rise, and hearts.js,
// window.peerscopeHearts.float(layer, n, onFloat, go), which floats up to 8
// hearts a call and at most 24 at once, so that a burst never floods the
// page. Each page serves the two files beside itself (Handler).
package hearts

import (
	"embed"
	"net/http"

	"github.com/peerscope/peerscope/internal/gzipfs"
)

//go:embed hearts.css hearts.js
var files embed.FS

// Handler serves /hearts.css and /hearts.js (mounted where a page's own
// files are, so that the page names them by relative URL); anything else
// is not found.
func Handler() http.Handler {
	fs := gzipfs.FileServer(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hearts.css", "/hearts.js":
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			fs.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
