package bootstrap

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Event kinds.
const (
	EventLive   = "live"   // a broadcast started (or was first announced)
	EventUpdate = "update" // title or viewer counts changed
	EventEnded  = "ended"  // a broadcast ended
	EventReplay = "replay" // a replay became available
	// EventInvited: a live private broadcast's roster now lists the
	// account; only the feeds of the accounts added hear it.
	EventInvited = "invited"
	eventHeartbt = "keepalive"
)

// Event is one change in the directory, as the event streams carry it
// (GET /api/v1/events, …/feed) and ServerConfig.OnLive hears it.
type Event struct {
	Kind    string       `json:"kind"`
	Listing *api.Listing `json:"broadcast"`
	// Followers are the account keys that follow the broadcaster (live
	// events of a signed-in broadcaster only): whom to notify. Only
	// OnLive hears them: the event streams never carry them (the follow
	// graph stays on the bootstrap).
	Followers []string `json:"-"`
	// Schedule is the scheduled broadcast of a "scheduled" or "reminder"
	// event (a cancelled one by its ID alone); Step, a reminder's step
	// (api.StepD3, …).
	Schedule *api.Scheduled `json:"schedule,omitempty"`
	Step     string         `json:"step,omitempty"`

	followerIDs map[int64]bool
	private     bool // for the feeds of followerIDs only, never the public stream
	countsOnly  bool // an update of viewer counts alone: list caches may keep theirs
}

// hub fans events out to the open event streams. A subscriber that falls
// behind by its whole buffer is dropped (its stream ends; the page
// reconnects and reloads).
type hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	account int64 // 0: the public stream; else only go-live and reminders of followed accounts, and invitations
	ch      chan Event
}

func newHub() *hub { return &hub{subs: make(map[*sub]struct{})} }

// count is the number of streams open.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) subscribe(account int64) (*sub, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	s := &sub{account: account, ch: make(chan Event, 64)}
	h.subs[s] = struct{}{}
	return s, true
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.account == 0 && e.private {
			continue
		}
		if s.account != 0 && ((e.Kind != EventLive && e.Kind != EventInvited && e.Kind != EventReminder) || !e.followerIDs[s.account]) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.ch)
	}
	clear(h.subs)
}

// keepalive is how often an idle event stream gets a comment line, so
// proxies do not cut it.
const keepalive = 25 * time.Second

// stream writes events as server-sent events until the client leaves, the
// subscription is dropped or the server closes.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, account int64) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported")
		return
	}
	sb, ok := s.hub.subscribe(account)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "closing", "the service is closing")
		return
	}
	defer s.hub.unsubscribe(sb)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": peerscope directory events\n\n")
	// Each event's ID is when it was sent: a client that reconnects (to
	// this replica or another) says the last it had, and is told first
	// what it missed (catchUp).
	send := func(e Event) bool {
		b, err := json.Marshal(e)
		if err != nil {
			return false
		}
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", s.cfg.Now().UnixNano(), e.Kind, b)
		return true
	}
	if since, ok := s.lastEventTime(r); ok {
		for _, e := range s.catchUp(r.Context(), since, account) {
			if !send(e) {
				return
			}
		}
	}
	fl.Flush()
	t := time.NewTicker(keepalive)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case e, ok := <-sb.ch:
			if !ok {
				return
			}
			if !send(e) {
				return
			}
			fl.Flush()
		}
	}
}
