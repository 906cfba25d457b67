// Package hearts is the one floating-hearts layer the studio (the go-live
// page, media/broadcaster) and the player (media/player, with chat/web's
// chat.js) both show: hearts.css, the layer, and hearts.js,
// window.peerscopeHearts.float(layer, n, onFloat, go), which floats every
// heart asked for, a burst spread over about a second, drawn on one canvas
// over the layer, with at most 300 in the air (more are coalesced into a
// larger heart), so that a flood never grows the page's work without bound.
// Each page serves the two files beside itself (Handler).
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
