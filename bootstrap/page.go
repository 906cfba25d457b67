package bootstrap

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
)

//go:embed page
var pageFS embed.FS

// Page returns the directory page's files (index.html, directory.js,
// directory.css): the bootstrap serves them at /, and a node serves the
// same at /directory/ over its proxy of the bootstrap's API. The script
// finds the API relative to the page: ./api/v1/….
func Page() fs.FS {
	sub, _ := fs.Sub(pageFS, "page")
	return sub
}

func mountPage(m *http.ServeMux) {
	files := http.FileServerFS(Page())
	m.Handle("GET /{$}", files)
	m.Handle("GET /directory.js", files)
	m.Handle("GET /directory.css", files)
	// A shared link (the tweet's) opens the directory on that broadcast.
	m.HandleFunc("GET /watch/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/?watch="+url.QueryEscape(r.PathValue("id")), http.StatusFound)
	})
}
