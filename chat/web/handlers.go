package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/internal/localapi"
)

// withRoom adapts a handler of the room's API: Config.Room is asked once
// per request.
func (s *Server) withRoom(h func(http.ResponseWriter, *http.Request, *chat.Room)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room := s.cfg.Room()
		if room == nil {
			http.Error(w, "no chat on this broadcast", http.StatusNotFound)
			return
		}
		h(w, r, room)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the status that fits a room's refusal.
func writeError(w http.ResponseWriter, err error) {
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

// readJSON decodes a small request body into v. The body must say it is
// JSON (415): a form or a text/plain body is what any web page can send to
// the node without asking first.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !localapi.IsJSON(r) {
		http.Error(w, "send JSON, with Content-Type: application/json", http.StatusUnsupportedMediaType)
		return false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(v); err != nil {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reqCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 5*time.Second)
}

func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, room *chat.Room) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	log, err := room.Log(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]commentJSON, 0, len(log))
	for i := range log {
		out = append(out, commentOf(&log[i]))
	}
	writeJSON(w, out)
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, _ *chat.Room) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	release, ok := s.cfg.Streams.Acquire(r)
	if !ok {
		http.Error(w, "too many chat streams open from your address", http.StatusTooManyRequests)
		return
	}
	c := s.hub.add(s.cfg.IsOwner(r))
	defer s.hub.remove(c)
	defer release() // before the stream leaves the count Streams gives
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

func (s *Server) serveComment(w http.ResponseWriter, r *http.Request, room *chat.Room) {
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
	id, err := room.CommentAt(ctx, req.Text, at)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"id": id.String()})
}

func (s *Server) serveHeart(w http.ResponseWriter, r *http.Request, room *chat.Room) {
	var req struct {
		N  int   `json:"n"`
		At int64 `json:"at"` // Unix ms of the frame on the tapper's screen, as a comment's; 0: not said
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.N <= 0 {
		req.N = 1
	}
	var at time.Time
	if req.At > 0 {
		at = time.UnixMilli(req.At)
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	if err := room.HeartAt(ctx, req.N, at); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, room *chat.Room) {
	var req struct {
		ID string `json:"id"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id, err := chat.ParseCommentID(req.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	if err := room.Report(ctx, id); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveVote(w http.ResponseWriter, r *http.Request, room *chat.Room) {
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
	if err := room.Vote(ctx, call, req.Guilty); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveViewers lists who watches: the count, and the signed-in viewers
// with their names and avatars. It is every page's, not only the owner's:
// the identities come from presence, which every viewer's attestation
// already carries over the broadcast's public topic to every node.
func (s *Server) serveViewers(w http.ResponseWriter, r *http.Request, room *chat.Room) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	v, err := room.Viewers(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	out := viewersJSON{Live: v.Live, Hearts: v.Hearts, Anonymous: v.Anonymous}
	for _, x := range v.Identified {
		id := x.Identity
		out.Identified = append(out.Identified, authorJSON{Peer: x.Peer.String(), Handle: id.Handle, Name: id.Name, Avatar: id.Avatar})
	}
	writeJSON(w, out)
}

func (s *Server) serveModeration(w http.ResponseWriter, r *http.Request, room *chat.Room) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	st, err := room.Moderation(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	out := moderationJSON{Synced: st.Synced, CommentsOff: st.CommentsOff, FollowersOnly: st.FollowersOnly}
	if s.cfg.IsOwner(r) {
		out.Follows, out.Blocked = st.Follows, st.Blocked
		out.Muted = make(map[string]int64, len(st.Muted))
		for u, t := range st.Muted {
			out.Muted[u] = unixMilli(t)
		}
	}
	writeJSON(w, out)
}

func (s *Server) serveModerate(w http.ResponseWriter, r *http.Request, room *chat.Room) {
	if !s.cfg.IsOwner(r) {
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
		err = room.SetCommentsOff(ctx, req.Op == "comments_off")
	case "block", "unblock":
		var p peer.ID
		if p, err = peer.Decode(req.Target); err != nil {
			http.Error(w, fmt.Sprintf("target %q is not a peer ID", req.Target), http.StatusBadRequest)
			return
		}
		if req.Op == "block" {
			err = room.Block(ctx, p)
		} else {
			err = room.Unblock(ctx, p)
		}
	case "delete":
		var id chat.CommentID
		if id, err = chat.ParseCommentID(req.Target); err == nil {
			err = room.Delete(ctx, id)
		}
	case "followers_only", "followers_off":
		err = room.SetFollowersOnly(ctx, req.Op == "followers_only", req.Follows)
	default:
		http.Error(w, fmt.Sprintf("unknown op %q", req.Op), http.StatusBadRequest)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
