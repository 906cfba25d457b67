package page

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"

	"github.com/peerscope/peerscope/internal/gzipfs"
)

//go:embed index.html directory.js directory.css world.svg
var files embed.FS

// CSP is the page's Content-Security-Policy: its own script, style and
// requests (the API beside it), avatars over https, nothing framed, and
// nobody may frame it. Whoever serves the page sends it (a node does; a
// bootstrap should).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// FS returns the page's files: index.html, directory.js, directory.css,
// and world.svg, the map's outline of the land (Natural Earth 1:110m,
// public domain, drawn by scripts/worldmap).
func FS() fs.FS { return files }

// Mount serves the page on mux under prefix ("" for the root, "/directory"
// on a node): prefix/ is index.html, beside it the script and the style.
// prefix/u/<who> is a profile's address to share: it sends the browser to
// the page, which shows the profile (?u=<who>: an account key, an @handle
// or a peer ID). Nothing else under prefix is the page's.
func Mount(mux *http.ServeMux, prefix string) {
	h := http.StripPrefix(prefix, gzipfs.FileServer(files))
	mux.Handle("GET "+prefix+"/{$}", h)
	mux.HandleFunc("GET "+prefix+"/u/{who}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, prefix+"/?u="+url.QueryEscape(r.PathValue("who")), http.StatusFound)
	})
	mux.Handle("GET "+prefix+"/directory.js", h)
	mux.Handle("GET "+prefix+"/directory.css", h)
	mux.Handle("GET "+prefix+"/world.svg", h)
}
