package node

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chat"
)

// chatClientQueue is how many events may wait for one slow HTTP client
// before its newest are dropped.
const chatClientQueue = 128

// chatEvery is how often the node reports its browsers to the tree, the
// broadcaster reads the tree's sums for its room, and the chat stream tells
// its clients the live count when it changed.
const chatEvery = 500 * time.Millisecond

// webViewerWindow is how long a player that fetched LL-HLS counts as
// watching after its last request.
const webViewerWindow = 10 * time.Second

// joinChat joins the broadcast's chat room on the node's GossipSub router.
// Chat is not what a viewer came for: a room that fails leaves the video
// playing, and the page without chat.
func (b *Broadcast) joinChat() {
	cfg := chat.Config{
		Broadcast:   b.id,
		Broadcaster: b.rootID,
		Logger:      b.log,
		// Identity: this node's attestation (the one fetched from its
		// bootstrap, or Config.Attestation), and the keys to believe
		// others' (Config.TrustedKeys, and the bootstraps' key sets with
		// their validity windows).
		Attestation: b.n.Attestation(),
		Trusted:     b.n.cfg.TrustedKeys,
		Trust:       b.n.Trust(),
	}
	// Taps go up the tree with its statuses; the broadcaster's room reads
	// the audience, browsers and hearts from the tree's sums.
	b.treeLink.Configure(&cfg)
	room, err := chat.Join(b.ctx, b.n.ps, b.n.host, cfg)
	if err != nil {
		b.log.Warn("no chat for this broadcast", "err", err)
		return
	}
	b.room = room
	b.wg.Go(b.fanOutChat)
}

// webViewers counts the browsers this node serves: WHEP sessions and LL-HLS
// players heard from lately. It runs on the room's goroutine: it reads
// counters only.
func (b *Broadcast) webViewers() int {
	return b.whep.Sessions() + b.hlsClients.count(time.Now())
}

// fanOutChat drains the room's events to the HTTP clients of the chat
// stream and tells them the live count when it changes; every chatEvery it
// tells the tree how many browsers this node serves and keeps the tree's
// sums at hand for the room. It ends when the room is closed.
func (b *Broadcast) fanOutChat() {
	t := time.NewTicker(chatEvery)
	defer t.Stop()
	b.reportWeb()
	b.refreshCounts()
	lastLive, lastHearts := -1, uint64(0)
	for {
		select {
		case e, ok := <-b.room.Events():
			if !ok {
				b.chat.closeAll()
				return
			}
			if name, v, ownerOnly := chatEventJSON(e); name != "" {
				b.chat.send(name, v, ownerOnly)
			}
		case <-t.C:
			b.reportWeb()
			b.refreshCounts()
			ctx, cancel := context.WithTimeout(b.ctx, time.Second)
			v, err := b.room.Viewers(ctx)
			cancel()
			if err == nil && (v.Live != lastLive || v.Hearts != lastHearts || b.chat.fresh.Swap(false)) {
				lastLive, lastHearts = v.Live, v.Hearts
				b.chat.send("viewers", viewersJSON{Live: v.Live, Hearts: v.Hearts}, false)
			}
		}
	}
}

// reportWeb tells the tree how many browsers this node serves.
func (b *Broadcast) reportWeb() { b.treeLink.ReportBrowsers(b.webViewers()) }

// refreshCounts reads the broadcaster's tree's sums for its room (asking
// the tree from the room's goroutine would make it wait on another).
func (b *Broadcast) refreshCounts() {
	if !b.root {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	_ = b.treeLink.Refresh(ctx)
}

// chatHub fans events out to the open chat streams.
type chatHub struct {
	mu      sync.Mutex
	clients map[*chatClient]struct{}
	closed  bool
	fresh   atomic.Bool // a client came: say the count again
	dropped atomic.Uint64
}

type chatClient struct {
	owner bool
	ch    chan []byte
}

func (h *chatHub) add(owner bool) *chatClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &chatClient{owner: owner, ch: make(chan []byte, chatClientQueue)}
	if h.closed {
		close(c.ch)
		return c
	}
	if h.clients == nil {
		h.clients = map[*chatClient]struct{}{}
	}
	h.clients[c] = struct{}{}
	h.fresh.Store(true)
	return c
}

func (h *chatHub) remove(c *chatClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.ch)
	}
}

func (h *chatHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// send formats one server-sent event and queues it for every client.
func (h *chatHub) send(name string, v any, ownerOnly bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	msg := []byte("event: " + name + "\ndata: " + string(data) + "\n\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if ownerOnly && !c.owner {
			continue
		}
		select {
		case c.ch <- msg:
		default:
			h.dropped.Add(1)
		}
	}
}

func (h *chatHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		close(c.ch)
	}
	h.clients = nil
}

// recentClients counts the distinct clients seen within webViewerWindow.
type recentClients struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (r *recentClients) touch(key string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	r.seen[key] = now
	if len(r.seen) > 4096 {
		r.prune(now)
	}
}

func (r *recentClients) prune(now time.Time) {
	for k, t := range r.seen {
		if now.Sub(t) > webViewerWindow {
			delete(r.seen, k)
		}
	}
}

func (r *recentClients) count(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	return len(r.seen)
}

// The JSON the chat API speaks.
type (
	authorJSON struct {
		Peer        string `json:"peer"`
		Anonymous   bool   `json:"anonymous"`
		Handle      string `json:"handle,omitempty"`
		Name        string `json:"name,omitempty"`
		Avatar      string `json:"avatar,omitempty"`
		Broadcaster bool   `json:"broadcaster,omitempty"`
		Moderator   bool   `json:"moderator,omitempty"`
	}
	commentJSON struct {
		ID       string     `json:"id"`
		Author   authorJSON `json:"author"`
		Text     string     `json:"text"`
		At       int64      `json:"at"`       // the stream's wallclock, Unix ms
		Received int64      `json:"received"` // Unix ms
		Deleted  bool       `json:"deleted,omitempty"`
	}
	heartsJSON struct {
		Count int    `json:"count"` // others' hearts since the last event (this node's pages float their own)
		Total uint64 `json:"total"`
	}
	moderatedJSON struct {
		Op     string `json:"op"`
		Target string `json:"target,omitempty"`
		On     bool   `json:"on"`
		Until  int64  `json:"until,omitempty"`
	}
	// A call is a sequence number (a clock in ns): past JavaScript's exact
	// integers, so it travels as a string.
	summonsJSON struct {
		Call     uint64 `json:"call,string"`
		Comment  string `json:"comment"`
		Text     string `json:"text"`
		Deadline int64  `json:"deadline"`
	}
	reportedJSON struct {
		Comment string `json:"comment"`
		By      string `json:"by"`
	}
	verdictJSON struct {
		Call    uint64 `json:"call,string"`
		Comment string `json:"comment"`
		Guilty  bool   `json:"guilty"`
		For     int    `json:"for"`
		Against int    `json:"against"`
		Jurors  int    `json:"jurors"`
	}
	viewersJSON struct {
		Live       int          `json:"live"`
		Hearts     uint64       `json:"hearts"`
		Anonymous  int          `json:"anonymous,omitempty"`
		Identified []authorJSON `json:"identified,omitempty"`
	}
)

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func authorOf(a chat.Author) authorJSON {
	j := authorJSON{Peer: a.Peer.String(), Anonymous: a.Identity == nil, Broadcaster: a.Broadcaster, Moderator: a.Moderator}
	if a.Identity != nil {
		j.Handle, j.Name, j.Avatar = a.Identity.Handle, a.Identity.Name, a.Identity.Avatar
	}
	return j
}

func commentOf(c *chat.Comment) commentJSON {
	return commentJSON{ID: c.ID.String(), Author: authorOf(c.Author), Text: c.Text,
		At: unixMilli(c.At), Received: unixMilli(c.Received), Deleted: c.Deleted}
}

// chatEventJSON names an event for the stream and gives its JSON form;
// reports and verdicts are for the owner's page only.
func chatEventJSON(e chat.Event) (name string, v any, ownerOnly bool) {
	switch e := e.(type) {
	case *chat.Comment:
		return "comment", commentOf(e), false
	case *chat.Hearts:
		return "hearts", heartsJSON{Count: e.Count, Total: e.Total}, false
	case *chat.Moderated:
		return "moderated", moderatedJSON{Op: e.Op.String(), Target: e.Target, On: e.On, Until: unixMilli(e.Until)}, false
	case *chat.Summons:
		return "summons", summonsJSON{Call: e.Call, Comment: e.Comment.String(), Text: e.Text, Deadline: unixMilli(e.Deadline)}, false
	case *chat.Reported:
		return "reported", reportedJSON{Comment: e.Comment.String(), By: e.By.String()}, true
	case *chat.Verdict:
		return "verdict", verdictJSON{Call: e.Call, Comment: e.Comment.String(), Guilty: e.Guilty,
			For: e.For, Against: e.Against, Jurors: e.Jurors}, true
	}
	return "", nil, false
}

// OwnerToken returns the token that makes a local request the owner's:
// moderation, and the viewer list. The page takes it in its URL fragment
// (OwnerURL); a request gives it as "Authorization: Bearer TOKEN" (or
// ?owner=TOKEN for the event stream) and must come from this machine.
func (n *Node) OwnerToken() string { return n.owner }

// OwnerURL returns the player page as the node's owner opens it: with the
// owner token in the fragment, so the page shows moderation.
func (b *Broadcast) OwnerURL() string { return b.URLs().Player + "#owner=" + b.n.owner }

// isOwner tells whether a request is the local owner's: from loopback,
// with the node's owner token or the broadcast's stream key.
func (b *Broadcast) isOwner(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.URL.Query().Get("owner")
	}
	if tok == "" {
		return false
	}
	eq := func(a, b string) bool { return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	return eq(tok, b.n.owner) || (b.pub != nil && eq(tok, b.streamKey))
}

// chatHandler serves a broadcast's chat API under the player's chat/:
//
//	GET  log        the comments so far (JSON)
//	GET  events     server-sent events: comment, hearts, moderated, summons,
//	                viewers (and, for the owner, reported and verdict)
//	POST comment    {"text", "at": Unix ms of the frame on screen}
//	POST heart      {"n"}
//	POST report     {"id"}
//	POST vote       {"call" (as the summons gave it, a string), "guilty"}
//	GET  moderation the moderation in force (blocked and muted users for
//	                the owner only)
//	GET  viewers    who watches (the owner's)
//	POST moderate   {"op": comments_off|comments_on|block|unblock|delete|
//	                followers_only|followers_off, "target": peer ID or
//	                comment ID, "follows": ["provider:account", …]} (the owner's)
func (b *Broadcast) chatHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /log", b.serveChatLog)
	mux.HandleFunc("GET /events", b.serveChatEvents)
	mux.HandleFunc("POST /comment", b.serveComment)
	mux.HandleFunc("POST /heart", b.serveHeart)
	mux.HandleFunc("POST /report", b.serveReport)
	mux.HandleFunc("POST /vote", b.serveVote)
	mux.HandleFunc("GET /viewers", b.serveViewers)
	mux.HandleFunc("GET /moderation", b.serveModeration)
	mux.HandleFunc("POST /moderate", b.serveModerate)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.room == nil {
			http.Error(w, "no chat on this broadcast", http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// chatError answers with the status that fits a room's refusal.
func chatError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, chat.ErrNotReady):
		code = http.StatusServiceUnavailable
	case errors.Is(err, chat.ErrRateLimited):
		code = http.StatusTooManyRequests
	case errors.Is(err, chat.ErrMalformed):
		code = http.StatusBadRequest
	case errors.Is(err, chat.ErrCommentsOff), errors.Is(err, chat.ErrFollowersOnly),
		errors.Is(err, chat.ErrBlocked), errors.Is(err, chat.ErrMuted),
		errors.Is(err, chat.ErrNotModerator), errors.Is(err, chat.ErrNotBroadcaster), errors.Is(err, chat.ErrNotJuror):
		code = http.StatusForbidden
	case errors.Is(err, chat.ErrNoCall), errors.Is(err, chat.ErrDeleted):
		code = http.StatusNotFound
	case errors.Is(err, chat.ErrClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = http.StatusServiceUnavailable
	}
	http.Error(w, strings.TrimPrefix(err.Error(), "chat: "), code)
}

// readJSON decodes a small request body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(v); err != nil {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reqCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 5*time.Second)
}

func (b *Broadcast) serveChatLog(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	log, err := b.room.Log(ctx)
	if err != nil {
		chatError(w, err)
		return
	}
	out := make([]commentJSON, 0, len(log))
	for i := range log {
		out = append(out, commentOf(&log[i]))
	}
	writeJSON(w, out)
}

func (b *Broadcast) serveChatEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c := b.chat.add(b.isOwner(r))
	defer b.chat.remove(c)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": chat\n\n"))
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-c.ch:
			if !ok {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func (b *Broadcast) serveComment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text string `json:"text"`
		At   int64  `json:"at"` // Unix ms; 0: now
	}
	if !readJSON(w, r, &req) {
		return
	}
	var at time.Time
	if req.At > 0 {
		at = time.UnixMilli(req.At)
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	id, err := b.room.CommentAt(ctx, req.Text, at)
	if err != nil {
		chatError(w, err)
		return
	}
	writeJSON(w, map[string]string{"id": id.String()})
}

func (b *Broadcast) serveHeart(w http.ResponseWriter, r *http.Request) {
	var req struct {
		N int `json:"n"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.N <= 0 {
		req.N = 1
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	if err := b.room.Heart(ctx, req.N); err != nil {
		chatError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broadcast) serveReport(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id, err := chat.ParseCommentID(req.ID)
	if err != nil {
		chatError(w, err)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	if err := b.room.Report(ctx, id); err != nil {
		chatError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broadcast) serveVote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Call   json.Number `json:"call"` // a string (see summonsJSON), or a number
		Guilty bool        `json:"guilty"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	call, err := strconv.ParseUint(req.Call.String(), 10, 64)
	if err != nil {
		http.Error(w, fmt.Sprintf("bad call %q", req.Call), http.StatusBadRequest)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	if err := b.room.Vote(ctx, call, req.Guilty); err != nil {
		chatError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broadcast) serveViewers(w http.ResponseWriter, r *http.Request) {
	if !b.isOwner(r) {
		http.Error(w, "the viewer list is for the broadcast's owner", http.StatusForbidden)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	v, err := b.room.Viewers(ctx)
	if err != nil {
		chatError(w, err)
		return
	}
	out := viewersJSON{Live: v.Live, Hearts: v.Hearts, Anonymous: v.Anonymous}
	for _, x := range v.Identified {
		id := x.Identity
		out.Identified = append(out.Identified, authorJSON{Peer: x.Peer.String(), Handle: id.Handle, Name: id.Name, Avatar: id.Avatar})
	}
	writeJSON(w, out)
}

// moderationJSON is the moderation in force, as a page shows it.
type moderationJSON struct {
	Synced        bool             `json:"synced"`
	CommentsOff   bool             `json:"comments_off"`
	FollowersOnly bool             `json:"followers_only"`
	Follows       []string         `json:"follows,omitempty"`
	Blocked       []string         `json:"blocked,omitempty"` // users: "peer:<ID>" or "acct:<provider>:<account>"
	Muted         map[string]int64 `json:"muted,omitempty"`   // user → end, Unix ms (0: for the broadcast)
}

func (b *Broadcast) serveModeration(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	st, err := b.room.Moderation(ctx)
	if err != nil {
		chatError(w, err)
		return
	}
	out := moderationJSON{Synced: st.Synced, CommentsOff: st.CommentsOff, FollowersOnly: st.FollowersOnly}
	if b.isOwner(r) {
		out.Follows, out.Blocked = st.Follows, st.Blocked
		out.Muted = make(map[string]int64, len(st.Muted))
		for u, t := range st.Muted {
			out.Muted[u] = unixMilli(t)
		}
	}
	writeJSON(w, out)
}

func (b *Broadcast) serveModerate(w http.ResponseWriter, r *http.Request) {
	if !b.isOwner(r) {
		http.Error(w, "moderation is for the broadcast's owner, on this machine, with its token", http.StatusForbidden)
		return
	}
	var req struct {
		Op      string   `json:"op"`
		Target  string   `json:"target"`
		Follows []string `json:"follows"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	var err error
	switch req.Op {
	case "comments_off", "comments_on":
		err = b.room.SetCommentsOff(ctx, req.Op == "comments_off")
	case "block", "unblock":
		var p peer.ID
		if p, err = peer.Decode(req.Target); err != nil {
			http.Error(w, fmt.Sprintf("target %q is not a peer ID", req.Target), http.StatusBadRequest)
			return
		}
		if req.Op == "block" {
			err = b.room.Block(ctx, p)
		} else {
			err = b.room.Unblock(ctx, p)
		}
	case "delete":
		var id chat.CommentID
		if id, err = chat.ParseCommentID(req.Target); err == nil {
			err = b.room.Delete(ctx, id)
		}
	case "followers_only", "followers_off":
		err = b.room.SetFollowersOnly(ctx, req.Op == "followers_only", req.Follows)
	default:
		http.Error(w, fmt.Sprintf("unknown op %q", req.Op), http.StatusBadRequest)
		return
	}
	if err != nil {
		chatError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
