package player

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/peerscope/peerscope/internal/gzipfs"
	"github.com/peerscope/peerscope/internal/localapi"
	"github.com/peerscope/peerscope/web/hearts"
)

//go:embed assets
var assets embed.FS

// Status is what the page shows about the broadcast, served as JSON at
// api/status. The node fills it from the broadcast's announcement, the
// players' state and chat presence.
type Status struct {
	Title       string    `json:"title"`
	Broadcaster string    `json:"broadcaster,omitempty"` // display name, when known
	Live        bool      `json:"live"`                  // parts are arriving
	Ended       bool      `json:"ended"`                 // the broadcast is over
	Viewers     int       `json:"viewers,omitempty"`     // live viewers, when known
	StartedAt   time.Time `json:"started_at,omitzero"`

	// Replay marks a replay's page: hls/ is a VOD playlist, played from
	// the start with seeking, and api/comments gives the comments on its
	// timeline.
	Replay   bool    `json:"replay,omitempty"`
	Duration float64 `json:"duration,omitempty"` // the replay's length, s
	// ReplayViewers counts the replay's views (shown to the broadcaster
	// beside the live count): viewers that proved they fetched it all,
	// ReplayViewersIdentified of them distinct signed-in accounts.
	ReplayViewers           int `json:"replay_viewers,omitempty"`
	ReplayViewersIdentified int `json:"replay_viewers_identified,omitempty"`
	// ReplayURL, on an ended broadcast's page, is where its replay plays.
	ReplayURL string `json:"replay_url,omitempty"`
	// ReplayLink, on an ended broadcast's web link (whose server carries
	// no media), is the peerscope:// link its replay plays from with a
	// Peerscope node, while the replay lives.
	ReplayLink string `json:"replay_link,omitempty"`
	// Who is the broadcaster as whoever serves the page knows them (the
	// directory's listing, from the broadcaster's attestation); nil:
	// anonymous, or not known. The page shows it, and its source
	// (Provider), as it is.
	Who *Person `json:"who,omitempty"`
	// Anonymous says that the source that would name the broadcaster (the
	// listing) has them signed in as nobody. Neither Who nor Anonymous:
	// not known here (no directory lists the broadcast).
	Anonymous bool `json:"anonymous,omitempty"`
	// Link is the broadcast's peerscope:// link, and WebLink the https
	// page that plays it in any browser (a bootstrap's /w/<ID>/, once the
	// broadcast is listed there): what the page's Share offers. Either may
	// be empty (the page then offers its own URL).
	Link    string `json:"link,omitempty"`
	WebLink string `json:"web_link,omitempty"`
	// Prefer is the way the page tries first when its URL names none
	// (?mode=): "p2p" (the page's own light node, then WHEP, then LL-HLS)
	// on a web link, which no full node serves; "" for WHEP first.
	Prefer string `json:"prefer,omitempty"`
}

// Person is a signed-in broadcaster: an identity a bootstrap attested,
// from a Twitter account ("twitter") or a phone number ("phone").
type Person struct {
	Provider string `json:"provider"`
	Account  string `json:"account"` // provider:account is what follows name
	Handle   string `json:"handle,omitempty"`
	Name     string `json:"name,omitempty"`
	Avatar   string `json:"avatar,omitempty"` // https, or none
}

// Comment is a comment on a replay's timeline.
type Comment struct {
	At          float64 `json:"at"` // media time, s from the replay's start
	Name        string  `json:"name"`
	Text        string  `json:"text"`
	Broadcaster bool    `json:"broadcaster,omitempty"`
}

// Heart is one second of a replay's hearts.
type Heart struct {
	At    float64 `json:"at"`    // media time, s from the replay's start
	Count uint32  `json:"count"` // hearts tapped watching that second (or, not said, that reached the broadcaster then)
}

// StatusHandler serves status() as JSON, uncached, to GET and HEAD.
func StatusHandler(status func() Status) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := json.Marshal(status())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("Access-Control-Allow-Origin", "*")
		w.Write(append(b, '\n'))
	})
}

// CSP is the page's Content-Security-Policy: its own scripts, style and
// requests, and the light node's WebTransport sessions to full nodes
// (https://<any address>/.well-known/libp2p-webtransport, the one path
// libp2p's WebTransport uses: the nodes it reaches are learnt from the
// tree, so their addresses cannot be listed here); media from its origin
// and from blob: (Media Source Extensions); images from its origin, data:
// and https: (the chat's avatars); no frames, no plugins, no forms sent
// elsewhere, and nobody may frame it. (WebRTC is not subject to
// connect-src.)
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
	"media-src 'self' blob:; connect-src 'self' " + WebTransportSource + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// WebTransportSource is the CSP source that lets the light node open a
// WebTransport session to a full node: any host and port, the path
// libp2p's WebTransport serves.
const WebTransportSource = "https://*:*/.well-known/libp2p-webtransport"

// Peer is what the page's light node needs to join the broadcast's tree
// itself (?mode=p2p; web/peer), served as JSON at api/peer.
type Peer struct {
	Broadcast string `json:"broadcast"`
	// Protocol is the tree's stream protocol ID for this broadcast
	// (/peerscope/mesh/<version>/<broadcast ID>): the page speaks whatever
	// version the node does.
	Protocol string `json:"protocol"`
	// Addrs are where a browser dials the node serving the page:
	// WebTransport and WebRTC-direct multiaddrs with /certhash and /p2p.
	Addrs []string `json:"addrs"`
	// Slots is how many other browsers the page offers to feed when its
	// URL does not say (?slots=N) and it is not on a metered network
	// (it then offers none): 0, a leaf, unless whoever serves the page
	// wants its viewers to relay (the bootstrap's web link does).
	Slots int `json:"slots,omitempty"`
}

// Routes are what the page plays from. A nil handler answers 404 (the page
// then tries the other way).
type Routes struct {
	HLS    http.Handler  // LL-HLS, e.g. an *hls.Server
	WHEP   http.Handler  // WHEP, e.g. a *whep.Server
	Status func() Status // nil: an empty Status
	// Chat serves the broadcast's chat at chat/: its API and the page's
	// chat script, chat/chat.js (chat/web's Server). The page shows no
	// chat without it.
	Chat http.Handler
	// Comments, on a replay, lists its comments at api/comments.
	Comments func() []Comment
	// Hearts, on a replay, lists its hearts at api/hearts: a count for
	// each second that had any, placed on the replay's timeline.
	Hearts func() []Heart
	// Peer, when set, tells the page's light node where to join the tree
	// (api/peer; ok false: 404, the page then plays another way), and
	// PeerScript serves the light node's script at peer.js (web/peer).
	Peer       func() (Peer, bool)
	PeerScript http.Handler
	// Token, when set, gives the token the page carries for the request
	// that asks for it (internal/localapi's page token: "" for a page that
	// may not act), in <meta name="peerscope-token">; the chat's script
	// sends it with what it posts, and has no box without it.
	Token func(*http.Request) string
}

// New returns the handler for one broadcast's page and its endpoints.
// Mount it with http.StripPrefix under a path of its own.
func New(r Routes) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := gzipfs.FileServer(static)
	page := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, req)
	})
	index, _ := fs.ReadFile(static, "index.html")
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := index
		if r.Token != nil {
			body = localapi.WithToken(index, r.Token(req))
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store") // it carries the token
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body)
	}))
	mux.Handle("GET /player.js", page)
	mux.Handle("GET /player.css", page)
	// The floating hearts the studio shows too (web/hearts).
	mux.Handle("GET /hearts.js", hearts.Handler())
	mux.Handle("GET /hearts.css", hearts.Handler())
	status := r.Status
	if status == nil {
		status = func() Status { return Status{} }
	}
	mux.Handle("/api/status", StatusHandler(status))
	if r.HLS != nil {
		mux.Handle("/hls/", http.StripPrefix("/hls", r.HLS))
	}
	if r.WHEP != nil {
		w := http.StripPrefix("/whep", r.WHEP)
		mux.Handle("/whep", w)
		mux.Handle("/whep/", w)
	}
	if r.Chat != nil {
		mux.Handle("/chat/", http.StripPrefix("/chat", r.Chat))
	} else {
		// The page loads chat/chat.js whatever it plays: without a chat (a
		// replay), the script is empty and the chat stays hidden.
		mux.HandleFunc("GET /chat/chat.js", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write([]byte("// no chat on this page\n"))
		})
	}
	if r.Comments != nil {
		mux.Handle("GET /api/comments", listHandler(r.Comments))
	}
	if r.Hearts != nil {
		mux.Handle("GET /api/hearts", noQuery(listHandler(r.Hearts)))
	}
	if r.Peer != nil && r.PeerScript != nil {
		mux.Handle("GET /peer.js", r.PeerScript)
		mux.Handle("GET /api/peer", peerHandler(r.Peer))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "" {
			// Mounted at "/watch/x" and asked for "/watch/x": the page's
			// relative URLs need the slash.
			target := "/"
			if u, err := url.ParseRequestURI(req.RequestURI); err == nil {
				target = u.Path + "/"
				if u.RawQuery != "" {
					target += "?" + u.RawQuery
				}
			}
			if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
				target = "/"
			}
			http.Redirect(w, req, target, http.StatusMovedPermanently)
			return
		}
		mux.ServeHTTP(w, req)
	})
}

func peerHandler(peer func() (Peer, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p, ok := peer()
		if !ok {
			http.Error(w, "this node takes no browser peers", http.StatusNotFound)
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		w.Write(append(b, '\n'))
	})
}

// noQuery refuses a request with a query, which h does not take, rather
// than answer it as though it had been understood (api/hearts; api/comments
// answers as it always did).
func noQuery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.RawQuery != "" {
			http.Error(w, "this list takes no query: GET it whole", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// listHandler serves a replay's list as a JSON array.
func listHandler[T any](list func() []T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cs := list()
		if cs == nil {
			cs = []T{}
		}
		b, err := json.Marshal(cs)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "max-age=60")
		w.Write(append(b, '\n'))
	})
}
