package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"

	"github.com/peerscope/peerscope/media/publish"
	"github.com/peerscope/peerscope/media/whip"
)

// The studio: what the go-live page shows while live (the comments, the
// hearts, who watches, the links to share). A phone on the LAN has the
// go-live page and its stream key, nothing else — the HTTPS server serves
// no player page and no chat — so the same chat API the owner's player
// page reads is routed here too, opened by the stream key as WHIP is:
//
//	GET /broadcast/live            the broadcast's ID, title and links, its replay after the end (studioJSON)
//	GET /broadcast/chat/events     the chat's event stream, as its owner gets it
//	GET /broadcast/chat/log        the comments so far
//	GET /broadcast/chat/viewers    the live count and who is signed in
//	GET /broadcast/chat/moderation the switches in force (comments off, followers only) and the blocked
//	POST /broadcast/chat/moderate  delete a comment, block its author, comments off/on,
//	                               followers only/off (JSON; followers only without a list
//	                               takes the accounts the node's account follows)
//	GET /broadcast/questions       the questions in advance of the account's scheduled broadcast, ranked
//	PUT /broadcast/location        the broadcast on the directory's map (JSON {"location": {"lat", "lon"}}),
//	                               or off it ({"location": null}); rounded to 0.1°, refused off the map
//	PUT /broadcast/thumbnail       a still of the preview for the directory's card (image/jpeg,
//	                               at most 32 KB and 640x640); 202 once checked, sent after the listing
//	POST /broadcast/questions/answered
//	                               tick one off (JSON {"schedule", "question"})
//
// The key is the broadcaster's credential (it publishes the video, and
// chooses a private broadcast's audience): it moderates the chat too, from
// the phone the broadcaster holds. The key travels as "Authorization: Bearer KEY" (the page reads
// the event stream with fetch, not EventSource, so that the key stays out
// of URLs and logs); the guard's Host and Origin checks hold, as for
// /broadcast/audience.

// studioJSON is what GET /broadcast/live answers.
type studioJSON struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Link   string `json:"link"`   // peerscope://…, for the app
	Web    string `json:"web"`    // the bootstrap's web link, once the broadcast is listed there; else ""
	Player string `json:"player"` // the player page on this node's HTTP server, at the host the asking browser used when it can reach it there
	Ended  bool   `json:"ended"`
	// Community: the node has a bootstrap, so "followers only" can know
	// whom the account follows (without one the studio offers no such
	// button).
	Community bool `json:"community"`
	// After the end, for the page's summary, once the replay is sealed:
	// Replay is where the browser that asked opens it (studioReplay: the
	// node's replay page at the address that browser reached the node by,
	// or the web link of a listed broadcast; "" when it can reach neither),
	// ReplayLocal the replay page on the node's machine, and its views so
	// far. The broadcast stays in the node's list after its end (until
	// closed), so the key still opens this then.
	Replay        string `json:"replay,omitempty"`
	ReplayLocal   string `json:"replay_local,omitempty"`
	ReplayViewers int    `json:"replay_viewers"`
	// Location is where the broadcast shows on the directory's map, as
	// the directory keeps it (rounded to 0.1°); absent: not on the map.
	Location *api.Location `json:"location,omitempty"`
}

// studioLocation is the body of PUT /broadcast/location: a point
// ({"lat", "lon"} in degrees), or null to take the broadcast off the map.
type studioLocation struct {
	Location *api.Location `json:"location"`
}

// studioKey marks a request that the stream key of the broadcast it holds
// opened (isOwner reads it).
type studioKey struct{}

func (n *Node) mountStudio(mux *http.ServeMux) {
	mux.HandleFunc("GET /broadcast/live", n.serveStudio)
	for _, p := range []string{"events", "log", "viewers", "moderation"} {
		mux.HandleFunc("GET /broadcast/chat/"+p, n.serveStudioChat)
	}
	// A body of JSON only (chat/web checks it, 415): a form of another
	// site's page is refused before the key is looked at.
	mux.HandleFunc("POST /broadcast/chat/moderate", n.serveStudioModerate)
	mux.HandleFunc("GET /broadcast/questions", n.serveStudioQuestions)
	mux.HandleFunc("POST /broadcast/questions/answered", n.serveStudioAnswered)
	mux.HandleFunc("PUT /broadcast/location", n.serveStudioLocation)
	mux.HandleFunc("PUT /broadcast/thumbnail", n.serveStudioThumbnail)
}

// serveStudioLocation puts the broadcast on the directory's map, or takes
// it off: a point off the map, or anything but the JSON body, is refused
// with what is wrong and changes nothing. The listing's next renewal
// carries it to the directory.
func (n *Node) serveStudioLocation(w http.ResponseWriter, r *http.Request) {
	b := n.studioBroadcast(w, r, "application/json")
	if b == nil {
		return
	}
	var req studioLocation
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		studioError(w, http.StatusBadRequest, badRequestMessage(err))
		return
	}
	if b.caster != nil {
		studioError(w, http.StatusConflict, "a private broadcast is not listed, so it is on no map")
		return
	}
	if req.Location != nil {
		l := req.Location.Coarse()
		req.Location = &l
	}
	b.location.Store(req.Location)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(req)
}

// serveStudioThumbnail takes a still of the studio's preview for the
// broadcast's card in the directory: a JPEG that api.CheckThumbnail takes,
// or a refusal saying what is wrong (nothing kept). The listing loop sends
// the newest to the bootstrap once the broadcast is listed there; a
// bootstrap older than thumbnails keeps the card's initials.
func (n *Node) serveStudioThumbnail(w http.ResponseWriter, r *http.Request) {
	b := n.studioBroadcast(w, r, "image/jpeg")
	if b == nil {
		return
	}
	jpeg, err := io.ReadAll(io.LimitReader(r.Body, api.MaxThumbnailBytes+1))
	if err == nil {
		err = api.CheckThumbnail(jpeg)
	}
	if err != nil {
		studioError(w, http.StatusBadRequest, badRequestMessage(err))
		return
	}
	if b.caster != nil || !b.listed {
		studioError(w, http.StatusConflict, "the broadcast is not in the public directory, so it shows no still")
		return
	}
	if b.stiller != nil {
		b.stiller.studio.Store(n.clock.Now().UnixNano())
	}
	b.offerStill(jpeg)
	w.WriteHeader(http.StatusAccepted)
}

// studioQuestions is what GET /broadcast/questions answers: the scheduled
// broadcast this one answers (none: null) and its questions, ranked.
type studioQuestions struct {
	Schedule  *api.Scheduled `json:"schedule"`
	Questions []api.Question `json:"questions"`
}

// serveStudioQuestions answers the questions asked in advance of the
// scheduled broadcast of the node's account that is due now.
func (n *Node) serveStudioQuestions(w http.ResponseWriter, r *http.Request) {
	if n.studioBroadcast(w, r, "") == nil {
		return
	}
	out := studioQuestions{Questions: []api.Question{}}
	if n.community.HasBootstrap() {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		s, qs, err := n.community.ScheduledQuestions(ctx)
		if err != nil {
			studioError(w, http.StatusBadGateway, "the bootstrap cannot be asked: "+err.Error())
			return
		}
		out.Schedule = s
		if qs != nil {
			out.Questions = qs
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// serveStudioAnswered ticks a question off as the node's account.
func (n *Node) serveStudioAnswered(w http.ResponseWriter, r *http.Request) {
	if n.studioBroadcast(w, r, "application/json") == nil {
		return
	}
	var req struct {
		Schedule int64 `json:"schedule"`
		Question int64 `json:"question"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		studioError(w, http.StatusBadRequest, "JSON: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	q, err := n.community.MarkAnswered(ctx, req.Schedule, req.Question)
	var ae *api.APIError
	switch {
	case errors.As(err, &ae):
		studioError(w, ae.Status, ae.Message)
		return
	case err != nil:
		studioError(w, http.StatusBadGateway, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(q)
}

// badRequestMessage is err's message without api.ErrBadRequest's prefix.
func badRequestMessage(err error) string {
	return strings.TrimPrefix(err.Error(), api.ErrBadRequest.Error()+": ")
}

func studioError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": http.StatusText(status), "message": msg}})
}

// studioBroadcast returns the broadcast the request's stream key opens, or
// answers and returns nil: 415 when body is a media type and the request's
// body is not of it, else as WHIP would (401 for a missing or wrong key).
// No studio answer is cached.
func (n *Node) studioBroadcast(w http.ResponseWriter, r *http.Request, body string) *Broadcast {
	w.Header().Set("Cache-Control", "no-store")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); body != "" && mt != body {
		studioError(w, http.StatusUnsupportedMediaType, "the body must be "+body)
		return nil
	}
	var b *Broadcast
	if _, ok := whip.Authorize(w, r, func(key string) error {
		if b = n.whipBroadcast(key); b == nil {
			return publish.ErrStreamKey
		}
		return nil
	}, n.log.With("part", "studio")); !ok {
		return nil
	}
	return b
}

func (n *Node) serveStudio(w http.ResponseWriter, r *http.Request) {
	b := n.studioBroadcast(w, r, "")
	if b == nil {
		return
	}
	out := studioJSON{ID: b.id, Title: b.Announcement().Title, Link: b.Link().String(),
		Player: b.URLs().Player, Ended: b.ended(), Community: n.community.HasBootstrap(), Location: b.location.Load()}
	if b.listed {
		out.Web = n.community.WebLink(b.id)
	}
	// The node's pages as the browser that asks reaches them: a phone's
	// 127.0.0.1 is the phone ("" when it cannot reach them at all).
	base := n.HTTPURL()
	if !loopbackHost(r.Host) {
		base = n.httpURLFor(r.Host)
		if base != "" {
			out.Player = base + b.playerPath()
		}
	}
	if p := b.replayPath(); p != "" {
		out.ReplayLocal = n.HTTPURL() + p
		switch {
		case base != "":
			out.Replay = base + p
		case out.Web != "":
			out.Replay = out.Web
		}
		out.ReplayViewers = n.ReplayViews(b.id)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// serveStudioChat hands a studio's request to the broadcast's chat API
// (chat/web), as its owner's.
func (n *Node) serveStudioChat(w http.ResponseWriter, r *http.Request) {
	b := n.studioBroadcast(w, r, "")
	if b == nil {
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), studioKey{}, b))
	http.StripPrefix("/broadcast/chat", b.chat).ServeHTTP(w, r)
}

// serveStudioModerate hands a moderation to the chat API as the studio's
// other requests go, after one thing the phone cannot do itself: "followers
// only" limits comments to a list of accounts, which the owner's page on
// the node's machine types in; the studio asks for it without one, and the
// node fills in the accounts its own account follows at its bootstrap. Not
// signed in, or no bootstrap: a clear refusal, and nothing changes (an
// empty list would silently be comments off for everyone).
func (n *Node) serveStudioModerate(w http.ResponseWriter, r *http.Request) {
	b := n.studioBroadcast(w, r, "application/json")
	if b == nil {
		return
	}
	var req struct {
		Op      string   `json:"op"`
		Target  string   `json:"target,omitempty"`
		Follows []string `json:"follows,omitempty"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		studioError(w, http.StatusBadRequest, "JSON: "+err.Error())
		return
	}
	if req.Op == "followers_only" && len(req.Follows) == 0 {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		_, follows, err := n.community.Following(ctx)
		switch {
		case errors.Is(err, community.ErrNoBootstrap):
			studioError(w, http.StatusConflict, "followers only needs a community: this node has no bootstrap, so it does not know whom you follow (turn comments off instead)")
			return
		case errors.Is(err, community.ErrNotSignedIn):
			studioError(w, http.StatusConflict, "followers only needs this node signed in: sign in on the node's directory page, then try again")
			return
		case err != nil:
			studioError(w, http.StatusBadGateway, "the bootstrap cannot be asked whom you follow: "+err.Error())
			return
		case len(follows) == 0:
			studioError(w, http.StatusConflict, "you follow nobody yet: followers only would let nobody comment (turn comments off instead)")
			return
		}
		req.Follows = follows
	}
	body, _ := json.Marshal(req)
	r2 := r.Clone(context.WithValue(r.Context(), studioKey{}, b))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	http.StripPrefix("/broadcast/chat", b.chat).ServeHTTP(w, r2)
}

// openedByStudio tells whether r came through the studio's routes with
// b's stream key.
func (b *Broadcast) openedByStudio(r *http.Request) bool {
	opened, _ := r.Context().Value(studioKey{}).(*Broadcast)
	return opened == b
}

// loopbackHost reports whether a request's Host names this machine only
// (localhost or a loopback address): a browser on the node's machine.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpURLFor returns the base URL of the node's HTTP server as a device
// that reached the node at hostport (a phone on the LAN, at the HTTPS
// server's address) can open it: the same host at the HTTP server's port
// when the HTTP server listens on every interface, its own address when it
// listens on one beyond loopback, "" when it listens on loopback only (the
// node's pages are then for its own machine: a phone cannot reach them).
func (n *Node) httpURLFor(hostport string) string {
	tcp, ok := n.HTTPAddr().(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return ""
	}
	port := strconv.Itoa(tcp.Port)
	if !tcp.IP.IsUnspecified() {
		return "http://" + net.JoinHostPort(tcp.IP.String(), port)
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	// "0.0.0.0" takes IPv4 only: a phone that came by IPv6 gets the
	// machine's LAN address.
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.To4() == nil && tcp.IP.To4() != nil {
		return "http://" + localHostPort(tcp, true)
	}
	return "http://" + net.JoinHostPort(host, port)
}
