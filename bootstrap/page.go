package bootstrap

import (
	"net/http"
	"net/url"

	"github.com/peerscope/peerscope/bootstrap/page"
)

// mountPage serves the directory page at / (a node serves the same at
// /directory/ over its proxy of this API).
func mountPage(m *http.ServeMux) {
	page.Mount(m, "")
	// A shared link (the tweet's) opens the directory on that broadcast.
	m.HandleFunc("GET /watch/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/?watch="+url.QueryEscape(r.PathValue("id")), http.StatusFound)
	})
}
