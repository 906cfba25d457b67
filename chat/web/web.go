package web

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/gzipfs"
	"github.com/peerscope/peerscope/internal/httpserve"
)

//go:embed assets
var assets embed.FS

// DefaultEvery is how often Run tells the streams the live count when it
// changed, and the least time between its ticks.
const DefaultEvery = 500 * time.Millisecond

// DefaultStreamsPerClient is how many event streams one client (an IP
// address, an IPv6 /64) may hold open at once: a page holds one, a person
// a few tabs.
const DefaultStreamsPerClient = 16

// Config is what the chat's web side asks of the node that serves it: two
// hooks (the room, and whether a request is the owner's) and the pace of
// the live count.
type Config struct {
	// Room returns the broadcast's room, or nil when there is none (the
	// node could not join the chat): the API then answers 404, and the
	// page hides its chat. It is called on every request.
	Room func() *chat.Room
	// IsOwner tells whether a request is the node owner's: the viewer
	// list, moderation, the blocked and muted users, and reports and
	// verdicts on the event stream are for the owner only. Nil: nobody is.
	IsOwner func(*http.Request) bool
	// Every is how often Run tells the streams the live count when it
	// changed, and the least time between its ticks (DefaultEvery when
	// zero).
	Every time.Duration
	// Clock drives Run's ticks (the system clock when nil).
	Clock clock.Clock
	// Streams caps the event streams per client; a node shares one
	// across its broadcasts. Nil: a cap of DefaultStreamsPerClient for
	// this Server alone.
	Streams *httpserve.PerClient
}

// Server is one broadcast's chat as its page sees it: the HTTP API over
// the room, the page's script, and the server-sent event streams that Run
// feeds with the room's events. Mount it under the player's chat/ route
// (media/player Routes.Chat).
type Server struct {
	cfg  Config
	hub  hub
	mux  *http.ServeMux
	wake chan struct{} // Wake's, to Run; holds one
}

// New returns the chat's web side for the room cfg.Room returns.
func New(cfg Config) *Server {
	if cfg.Room == nil {
		cfg.Room = func() *chat.Room { return nil }
	}
	if cfg.IsOwner == nil {
		cfg.IsOwner = func(*http.Request) bool { return false }
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Streams == nil {
		cfg.Streams = httpserve.NewPerClient(DefaultStreamsPerClient)
	}
	cfg.Clock = clock.OrSystem(cfg.Clock)
	s := &Server{cfg: cfg, wake: make(chan struct{}, 1)}
	s.hub.onAdd = s.Wake
	s.mux = s.routes()
	return s
}

// routes is the API (handlers.go has each):
//
//	GET  chat.js    the page's script (assets/chat.js), room or not
//	GET  log        the comments so far (JSON)
//	GET  events     server-sent events: comment, hearts, moderated, summons,
//	                viewers (and, for the owner, reported and verdict); at
//	                most Config.Streams per client (429)
//	POST comment    {"text", "at": Unix ms of the frame on screen}
//	POST heart      {"n", "at"}
//	POST report     {"id"}
//	POST vote       {"call" (as the summons gave it, a string), "guilty"}
//	GET  moderation the moderation in force (blocked and muted users for
//	                the owner only)
//	GET  viewers    who watches: the count, the signed-in viewers (any page)
//	POST moderate   {"op": comments_off|comments_on|block|unblock|delete|
//	                followers_only|followers_off, "target": peer ID or
//	                comment ID, "follows": ["provider:account", …]} (the owner's)
func (s *Server) routes() *http.ServeMux {
	api := http.NewServeMux()
	api.HandleFunc("GET /log", s.withRoom(s.serveLog))
	api.HandleFunc("GET /events", s.withRoom(s.serveEvents))
	api.HandleFunc("POST /comment", s.withRoom(s.serveComment))
	api.HandleFunc("POST /heart", s.withRoom(s.serveHeart))
	api.HandleFunc("POST /report", s.withRoom(s.serveReport))
	api.HandleFunc("POST /vote", s.withRoom(s.serveVote))
	api.HandleFunc("GET /viewers", s.withRoom(s.serveViewers))
	api.HandleFunc("GET /moderation", s.withRoom(s.serveModeration))
	api.HandleFunc("POST /moderate", s.withRoom(s.serveModerate))

	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := gzipfs.FileServer(static)
	mux.Handle("GET /chat.js", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Room() == nil {
			http.Error(w, "no chat on this broadcast", http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		api.ServeHTTP(w, r)
	}))
	return mux
}

// ServeHTTP serves the chat's API and script; mount it with
// http.StripPrefix (the paths are relative to the chat route).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run carries the room's events to the event streams, and calls onTick
// (if set: the node reports its browsers to the tree there, and reads the
// tree's sums for the room) and then tells the streams the live count and
// the heart total when they changed, or when a stream was opened since
// (with no stream open, the room is not asked). It returns when the room
// is closed (its events end), after ending every stream; at once when
// there is no room.
//
// It ticks only when something is due: at once, then when Wake is called
// (a stream opening calls it too), when the time onTick last returned
// comes (the zero time: nothing), and every Config.Every while a stream is
// open (the room's live count changes without telling it). Ticks are at
// least Config.Every apart: a Wake within Every of the last tick is met
// Every after it, as the ticker that ran before met any change.
func (s *Server) Run(ctx context.Context, onTick func(now time.Time) (next time.Time)) {
	room := s.cfg.Room()
	if room == nil {
		return
	}
	if onTick == nil {
		onTick = func(time.Time) time.Time { return time.Time{} }
	}
	clk, every := s.cfg.Clock, s.cfg.Every
	// The floor only keeps a ticker's period positive: Every apart is
	// kept by the due times Run hands the Pacer.
	t := clock.NewPacer(clk, time.Millisecond, 0)
	defer t.Stop()
	lastLive, lastHearts := -1, uint64(0)
	var last time.Time // the last tick
	tick := func() {
		last = clk.Now()
		next := onTick(last)
		if s.hub.count() > 0 {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			v, err := room.Viewers(ctx)
			cancel()
			if err == nil && (v.Live != lastLive || v.Hearts != lastHearts || s.hub.fresh.Swap(false)) {
				lastLive, lastHearts = v.Live, v.Hearts
				s.hub.send("viewers", viewersJSON{Live: v.Live, Hearts: v.Hearts}, false)
			}
			if streams := last.Add(every); next.IsZero() || streams.Before(next) {
				next = streams
			}
		}
		if next.IsZero() {
			next = never
		}
		t.Ticked(last, laterOf(next, last.Add(every)))
	}
	tick()
	for {
		select {
		case e, ok := <-room.Events():
			if !ok {
				s.hub.closeAll()
				return
			}
			if name, v, ownerOnly := eventJSON(e); name != "" {
				s.hub.send(name, v, ownerOnly)
			}
		case <-t.C():
			tick()
		case <-s.wake:
			if now := clk.Now(); now.Sub(last) >= every {
				tick()
			} else {
				t.Changed(now, last.Add(every))
			}
		}
	}
}

// never stands for "nothing due" in Run's Pacer.
var never = time.Unix(1<<62, 0)

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Wake tells Run that what its onTick reports may have changed (a browser
// came or went): Run ticks at once, or Config.Every after its last tick if
// that was sooner. It never blocks.
func (s *Server) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Streams returns how many event streams are open (for the node's metrics).
func (s *Server) Streams() int { return s.hub.count() }
