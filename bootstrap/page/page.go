package page

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html directory.js directory.css
var files embed.FS

// FS returns the page's files: index.html, directory.js, directory.css.
func FS() fs.FS { return files }

// Mount serves the page on mux under prefix ("" for the root, "/directory"
// on a node): prefix/ is index.html, beside it the script and the style.
// Nothing else under prefix is the page's.
func Mount(mux *http.ServeMux, prefix string) {
	h := http.StripPrefix(prefix, http.FileServerFS(files))
	mux.Handle("GET "+prefix+"/{$}", h)
	mux.Handle("GET "+prefix+"/directory.js", h)
	mux.Handle("GET "+prefix+"/directory.css", h)
}
