package broadcaster

import (
	"bytes"
	"embed"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/peerscope/peerscope/internal/gzipfs"
	"github.com/peerscope/peerscope/web/hearts"
)

//go:embed assets
var assets embed.FS

// Config configures the page.
type Config struct {
	// WHIP is the WHIP endpoint's URL, relative to the page or absolute;
	// default "whip".
	WHIP string
	// Audience, when set, is the URL (relative to the page, or absolute)
	// of the broadcast's audience, which the stream key opens as it opens
	// WHIP: GET says who may watch (or that the broadcast is public), PUT
	// {accounts, mutuals, group} changes it. The page then shows a "Who
	// can watch" panel; empty: no panel, and the page asks nothing more
	// than WHIP.
	Audience string
	// Studio, when set, is the URL (relative to the page, or absolute) of
	// the studio's reads, opened by the stream key too: "live" there says
	// the broadcast's ID and links, "chat/events", "chat/viewers" are its
	// chat as its owner sees it (chat/web's API). The page then shows,
	// while live, the comments and hearts over the preview, the viewer
	// count and a row of links to share; empty: none of it.
	Studio string
}

// New returns the handler serving the page at "/" (and "/index.html"), and
// its script and style.
func New(cfg Config) http.Handler {
	if cfg.WHIP == "" {
		cfg.WHIP = "whip"
	}
	sub, _ := fs.Sub(assets, "assets")
	index, _ := fs.ReadFile(sub, "index.html")
	page := bytes.Replace(index, []byte("{{.WHIP}}"), []byte(html.EscapeString(cfg.WHIP)), 1)
	page = bytes.Replace(page, []byte("{{.Audience}}"), []byte(html.EscapeString(cfg.Audience)), 1)
	page = bytes.Replace(page, []byte("{{.Studio}}"), []byte(html.EscapeString(cfg.Studio)), 1)
	connect := "'self'"
	for _, s := range []string{cfg.WHIP, cfg.Audience, cfg.Studio} {
		if u, err := url.Parse(s); err == nil && u.IsAbs() && !strings.Contains(connect, " "+u.Scheme+"://"+u.Host) {
			connect += " " + u.Scheme + "://" + u.Host
		}
	}
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; media-src 'self' blob: mediastream:; connect-src " + connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	files := gzipfs.FileServer(sub)
	hearts := hearts.Handler()
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self)")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch p := strings.TrimPrefix(r.URL.Path, "/"); p {
		case "", "index.html":
			h.Set("Cache-Control", "no-cache")
			http.ServeContent(w, r, "index.html", started, bytes.NewReader(page))
		case "broadcast.js", "broadcast.css", "studio.js":
			h.Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		case "hearts.js", "hearts.css": // shared with the player
			hearts.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
