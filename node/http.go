package node

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/peerscope/peerscope/media/broadcaster"
)

// routes is the node's web server:
//
//	/                     the broadcasts this node has (HTML)
//	/api/broadcasts       the same as JSON
//	/api/broadcasts/<ID>/audience  a private broadcast's audience: who may watch, and a change (owner only)
//	/b/<ID>/…             a broadcast's player page, api/status, hls/, whep (media/player)
//	/r/<ID>/…             a replay's page: the same player, HLS VOD, api/comments, api/hearts
//	/broadcast/           the page to go live from (media/broadcaster)
//	/broadcast/whip[/…]   the WHIP endpoint that page publishes to
//	/broadcast/audience   who may watch the broadcast that page's stream key opens, and a change
//	/broadcast/live, /broadcast/chat/…  that broadcast's links and chat, read by the page while live (studio.go)
//	/directory/…          the directory, and what only the node can do (community)
//	/metrics              Prometheus text format
func (n *Node) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", n.serveIndex)
	mux.HandleFunc("GET /api/broadcasts", n.serveBroadcasts)
	n.mountAudience(mux)
	mux.Handle("GET /metrics", n.metrics.handler())
	mux.HandleFunc("/b/{id}", n.servePlayer)
	mux.HandleFunc("/b/{id}/", n.servePlayer)
	mux.HandleFunc("/r/{id}", n.serveReplay)
	mux.HandleFunc("/r/{id}/", n.serveReplay)
	n.mountGoLive(mux)
	n.mountDirectory(mux)
	return mux
}

// secureRoutes is the HTTPS server: the go-live page, its WHIP endpoint
// and its audience, nothing else. It is the one a phone on the LAN opens (browsers
// give the camera only to secure origins), so it serves nothing of the
// node's web UI or API: a LAN device reaches what the stream key opens.
func (n *Node) secureRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	n.mountGoLive(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "this address serves the page to go live from, at /broadcast/", http.StatusNotFound)
	})
	return mux
}

// mountGoLive routes /broadcast/ to the go-live page, its WHIP endpoint,
// its broadcast's audience and the studio's reads (all opened by the
// stream key).
func (n *Node) mountGoLive(mux *http.ServeMux) {
	mux.Handle("/broadcast/", http.StripPrefix("/broadcast", broadcaster.New(broadcaster.Config{Audience: "audience", Studio: "./"})))
	mux.HandleFunc("/broadcast/audience", n.goLiveAudience)
	n.mountStudio(mux)
	whipHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		wh := n.whip
		n.mu.Unlock()
		if wh == nil {
			http.Error(w, "this node takes no WHIP publishers (start a broadcast with WHIP)", http.StatusNotFound)
			return
		}
		wh.ServeHTTP(w, r)
	})
	mux.Handle("/broadcast/whip", whipHandler)
	mux.Handle("/broadcast/whip/", whipHandler)
}

// isWHIP tells the WHIP endpoint's requests: they carry their own
// credential (the stream key as a bearer token), so any origin and any of
// the machine's names may reach it (OBS, a WHIP page of another site).
func isWHIP(r *http.Request) bool {
	p := path.Clean(r.URL.Path) // "/broadcast/whip/../../b/…" is not WHIP's
	return p == "/broadcast/whip" || strings.HasPrefix(p, "/broadcast/whip/")
}

func (n *Node) servePlayer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b := n.lookup(id)
	if b == nil {
		http.Error(w, "no such broadcast on this node", http.StatusNotFound)
		return
	}
	http.StripPrefix("/b/"+id, b.page).ServeHTTP(w, r)
}

// BroadcastInfo is what /api/broadcasts says about one broadcast.
type BroadcastInfo struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Broadcaster bool      `json:"broadcaster"` // this node is the root
	Started     time.Time `json:"started,omitzero"`
	Ended       bool      `json:"ended"`
	Depth       int       `json:"depth"` // -1: not in the tree
	Children    int       `json:"children"`
	Slots       int       `json:"slots"`
	Link        string    `json:"link"`
	Player      string    `json:"player"` // path on this server
	HLS         string    `json:"hls"`
	// ReplayViewers counts the replay's proven views that reached this
	// node (on the broadcaster: all that could reach it), of which
	// ReplayViewersIdentified are distinct signed-in accounts.
	ReplayViewers           int    `json:"replay_viewers"`
	ReplayViewersIdentified int    `json:"replay_viewers_identified"`
	Replay                  string `json:"replay,omitempty"` // the replay page's path, once there is one
}

// Infos returns a summary of each broadcast (what the index page shows).
func (n *Node) Infos(ctx context.Context) []BroadcastInfo {
	var out []BroadcastInfo
	for _, b := range n.Broadcasts() {
		a := b.Announcement()
		st, _ := b.Status(ctx)
		out = append(out, BroadcastInfo{
			ID:                      b.id,
			Title:                   a.Title,
			Broadcaster:             b.root,
			Started:                 a.Started,
			Ended:                   b.ended(),
			Depth:                   st.Depth,
			Children:                len(st.Children),
			Slots:                   b.Slots(),
			Link:                    b.Link().String(),
			Player:                  b.playerPath(),
			HLS:                     b.playerPath() + "hls/index.m3u8",
			ReplayViewers:           n.ReplayViews(b.id),
			ReplayViewersIdentified: n.ReplayViewsBy(b.id).Identified,
			Replay:                  b.replayPath(),
		})
	}
	return out
}

func (n *Node) serveBroadcasts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	infos := n.Infos(ctx)
	if infos == nil {
		infos = []BroadcastInfo{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(infos)
}

// indexStyle is the index page's style, allowed by its hash in the page's
// Content-Security-Policy (indexCSP).
const indexStyle = `body{font:16px/1.4 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#222}
li{margin:.8rem 0}.meta{color:#666;font-size:.9rem;overflow-wrap:anywhere}code{font-size:.8rem;word-break:break-all}`

var indexCSP = func() string {
	sum := sha256.Sum256([]byte(indexStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src data:; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Peerscope node</title>
<link rel="icon" href="data:,">
<style>` + indexStyle + `</style></head><body>
<h1>Peerscope</h1>
<p class="meta">Node {{.Peer}}</p>
{{if .Broadcasts}}<ul>
{{range .Broadcasts}}<li><a href="{{.Player}}">{{if .Title}}{{.Title}}{{else}}(untitled){{end}}</a>
{{if .Ended}}<b>ended</b>{{end}}
<div class="meta">{{if .Broadcaster}}broadcasting{{else}}watching, {{.Depth}} hops from the broadcaster{{end}};
relaying to {{.Children}} of {{.Slots}} ·
<a href="{{.HLS}}">LL-HLS</a>{{if .Replay}} · <a href="{{.Replay}}">replay</a>{{end}}{{if .ReplayViewers}} · {{.ReplayViewers}} replay views{{end}}</div>
<div class="meta">Share: <code>{{.Link}}</code></div></li>
{{end}}</ul>
{{else}}<p>No broadcast on this node. <a href="/broadcast/">Go live</a> from a broadcast that takes WHIP, or run <code>peerscope watch LINK</code>.</p>{{end}}
<p class="meta"><a href="/metrics">metrics</a> · <a href="/api/broadcasts">api/broadcasts</a></p>
</body></html>
`))

func (n *Node) serveIndex(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", indexCSP)
	_ = indexPage.Execute(w, struct {
		Peer       string
		Broadcasts []BroadcastInfo
	}{n.host.ID().String(), n.Infos(ctx)})
}
