package bootstrap

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Replicas: several bootstrap processes on one PostgreSQL database serve
// one community. A change one of them writes must reach the event streams
// and go-live notices of all, and leave no stale list in their caches.
// PostgreSQL carries that (LISTEN/NOTIFY):
//
//	raise(e) ─► local hub (+ OnLive)
//	         └► NOTIFY peerscope_events {origin, kind, IDs}   (batched, before the write is answered)
//	                 │
//	 every other replica's listener (its own connection, LISTEN)
//	         └► drop its own; invalidate the list cache; re-read the rows
//	            by ID; publish to its hub (+ OnLive for go-live and reminders)
//
// A notice carries only IDs (PostgreSQL allows 8000 bytes of payload; a
// listing could exceed it, and the database is the truth anyway). When
// the listener's connection drops it reconnects with backoff, LISTENs
// again, and then resyncs from the broadcasts table what changed since it
// was last known to be listening: the go-live of every public broadcast
// live now that it has not told, the end of every one it told live that
// ended meanwhile. So a subscriber of this replica misses no go-live or
// end across the gap; updates, schedules, reminders and invitations of the
// gap are not replayed (the next event or reload shows them).
//
// A client's own gap (its replica died, its connection broke) is the
// stream's: every event carries an SSE ID, the time it was sent, and a
// client that comes back with Last-Event-ID, to any replica, is caught up
// from the same table first (catchUp).
//
// On SQLite (one process) there is none of this but the catch-up: raise
// is the hub.

// replicaChannel is the NOTIFY channel of the directory's events.
const replicaChannel = "peerscope_events"

// Timing of the listener.
const (
	// listenPing: a listener that heard nothing this long pings its
	// connection, which also dates what it has certainly heard.
	listenPing = 10 * time.Second
	// listenBackoff and listenBackoffMax bound the waits between
	// reconnection attempts (doubling from the first).
	listenBackoff    = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
	// resyncMargin widens the resync's window back in time: the rows'
	// times are the writing replica's clock, not ours.
	resyncMargin = 10 * time.Second
	// notifyTimeout bounds one batch of notices.
	notifyTimeout = 5 * time.Second
	// maxNoticePayload stays well under PostgreSQL's 8000 bytes.
	maxNoticePayload = 7000
	// invitedPerNotice splits a long roster change into several notices.
	invitedPerNotice = 200
)

// replicaNote is a notice between replicas: an event's kind and what to
// re-read it by.
type replicaNote struct {
	Origin    string `json:"o"`
	Kind      string `json:"k"`
	Broadcast string `json:"b,omitempty"`
	Schedule  int64  `json:"s,omitempty"`
	// Full: a schedule event that carried the schedule (a new one), not
	// its ID alone.
	Full bool   `json:"f,omitempty"`
	Step string `json:"st,omitempty"`
	// Accounts are an invitation's accounts.
	Accounts []int64 `json:"a,omitempty"`
	// CountsOnly: viewer counts changed, nothing the list caches keep
	// fresh.
	CountsOnly bool `json:"c,omitempty"`
}

// noteLists is the kind of a notice that only invalidates list caches.
const noteLists = "lists"

// notesOf returns the notices that tell other replicas of e.
func notesOf(origin string, e Event) []replicaNote {
	n := replicaNote{Origin: origin, Kind: e.Kind, Step: e.Step, CountsOnly: e.countsOnly}
	if e.Listing != nil {
		n.Broadcast = e.Listing.ID
	}
	if e.Schedule != nil {
		n.Schedule, n.Full = e.Schedule.ID, e.Schedule.Who != nil
	}
	if e.Kind != EventInvited {
		return []replicaNote{n}
	}
	var out []replicaNote
	ids := make([]int64, 0, len(e.followerIDs))
	for id := range e.followerIDs {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		k := min(len(ids), invitedPerNotice)
		c := n
		c.Accounts, ids = ids[:k], ids[k:]
		out = append(out, c)
	}
	return out
}

// replicas is a Server's side of the other replicas: the notifier that
// tells them, the listener that hears them, and which public broadcasts
// this replica's streams were told are live (for the resync).
type replicas struct {
	s      *Server
	origin string
	cfg    *pgx.ConnConfig
	log    *slog.Logger
	gate   func(attempt int)

	notify notifier

	seenMu sync.Mutex
	seen   map[string]time.Time // broadcast → when last heard live

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	// listening is closed once the listener first LISTENs: from then on
	// nothing another replica commits is missed.
	listening  chan struct{}
	listenOnce sync.Once
}

// startReplicas starts the listener of s's store's database.
func startReplicas(s *Server, cfg *pgx.ConnConfig) (*replicas, error) {
	var b [8]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return nil, fmt.Errorf("bootstrap: replica origin: %w", err)
	}
	origin := hex.EncodeToString(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	r := &replicas{s: s, origin: origin, cfg: cfg, log: s.log.With("replica", origin), gate: s.cfg.replicaGate,
		notify: notifier{cfg: cfg}, seen: make(map[string]time.Time), cancel: cancel, done: make(chan struct{}),
		listening: make(chan struct{})}
	// Before any stream opens: what is live now is nothing to announce.
	// From here on, what the listener does not hear, its first resync
	// finds.
	heard := s.cfg.Now()
	r.learnLive(ctx)
	go func() {
		defer close(r.done)
		r.listen(ctx, heard)
	}()
	// Serve once listening. Schedules, updates, reminders and invitations
	// are not resynced after a gap (only go-lives and ends are), so one
	// another replica committed between this start and its first LISTEN
	// would never reach this replica's streams: a test made a schedule
	// through one replica just after the other started, and under load
	// the other's stream never heard of it. A database that does not
	// answer in time is a gap like any other: start anyway.
	select {
	case <-r.listening:
	case <-time.After(notifyTimeout):
		r.log.Warn("not listening to the other replicas yet; serving anyway")
	}
	return r, nil
}

// stopListening stops the listener; safe to call twice.
func (r *replicas) stopListening() {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
	})
}

// close stops the listener and closes the notifier's connection; safe to
// call twice.
func (r *replicas) close() {
	r.stopListening()
	r.notify.close()
}

// raise publishes e to this replica's event streams and tells the other
// replicas (PostgreSQL), before the handler answers: an acknowledged
// change has been told.
func (s *Server) raise(ctx context.Context, e Event) {
	r := s.replicas
	if r == nil {
		s.hub.publish(e)
		return
	}
	r.track(e) // first: a resync running meanwhile must not tell it again
	s.hub.publish(e)
	for _, n := range notesOf(r.origin, e) {
		r.send(ctx, n)
	}
}

// listsChanged invalidates the list cache here and on the other replicas.
func (s *Server) listsChanged(ctx context.Context) {
	s.lists.invalidate()
	if r := s.replicas; r != nil {
		r.send(ctx, replicaNote{Origin: r.origin, Kind: noteLists})
	}
}

func (r *replicas) send(ctx context.Context, n replicaNote) {
	b, err := json.Marshal(n)
	if err == nil && len(b) > maxNoticePayload {
		err = fmt.Errorf("notice of %d bytes", len(b))
	}
	if err == nil {
		err = r.notify.send(ctx, string(b))
	}
	if err != nil {
		r.log.Warn("telling the other replicas", "kind", n.Kind, "err", err)
	}
}

// track keeps which public broadcasts this replica's streams were told
// are live, and reports whether e is news to them: a go-live they were
// not told, an end of one they were (a broadcast goes live once, and a
// notice and a resync may both bring it), anything else.
func (r *replicas) track(e Event) bool {
	if e.Listing == nil || e.private || e.Listing.Private {
		return true
	}
	id := e.Listing.ID
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	_, told := r.seen[id]
	switch e.Kind {
	case EventLive:
		r.seen[id] = r.s.cfg.Now()
		return !told
	case EventEnded:
		delete(r.seen, id)
		return told
	case EventUpdate:
		if told {
			r.seen[id] = r.s.cfg.Now()
		}
	}
	return true
}

// --- sending ---

// notifier sends notices on its own connection, in batches: whoever
// finds the connection free sends every notice queued meanwhile in one
// statement, as the store's commitLoop groups announcements.
type notifier struct {
	cfg *pgx.ConnConfig

	qmu   sync.Mutex
	batch *noticeBatch // being filled

	smu    sync.Mutex // one sender at a time; guards conn
	conn   *pgx.Conn
	closed bool
}

type noticeBatch struct {
	payloads []string
	done     chan struct{}
	err      error
}

func (n *notifier) send(ctx context.Context, payload string) error {
	n.qmu.Lock()
	if n.batch == nil {
		n.batch = &noticeBatch{done: make(chan struct{})}
	}
	b := n.batch
	b.payloads = append(b.payloads, payload)
	n.qmu.Unlock()

	n.smu.Lock()
	defer n.smu.Unlock()
	select {
	case <-b.done: // sent by the sender before us
		return b.err
	default:
	}
	// Not sent: it is still the batch being filled (only a sender,
	// holding smu, takes one, and sends it before letting go).
	n.qmu.Lock()
	n.batch = nil
	n.qmu.Unlock()
	b.err = n.sendBatch(ctx, b.payloads)
	close(b.done)
	return b.err
}

// sendBatch sends payloads, retrying once on a fresh connection (the
// previous one may have died while idle). Caller holds smu.
func (n *notifier) sendBatch(ctx context.Context, payloads []string) error {
	var err error
	for try := 0; try < 2; try++ {
		if n.closed {
			return errors.New("bootstrap: notifier closed")
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
		if n.conn == nil || n.conn.IsClosed() {
			n.conn, err = connectAs(sctx, n.cfg, "peerscope-notify")
			if err == nil {
				// A notice is no record: its transaction need not wait
				// for the disk.
				_, err = n.conn.Exec(sctx, `SET synchronous_commit = off`)
			}
		}
		if err == nil {
			_, err = n.conn.Exec(sctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, replicaChannel, payloads)
		}
		cancel()
		if err == nil {
			return nil
		}
		if n.conn != nil {
			n.conn.Close(context.Background())
			n.conn = nil
		}
	}
	return fmt.Errorf("bootstrap: notify: %w", err)
}

func (n *notifier) close() {
	n.smu.Lock()
	defer n.smu.Unlock()
	n.closed = true
	if n.conn != nil {
		n.conn.Close(context.Background())
		n.conn = nil
	}
}

// connectAs opens a connection named app (application_name: an operator
// sees in pg_stat_activity which connection is which).
func connectAs(ctx context.Context, cfg *pgx.ConnConfig, app string) (*pgx.Conn, error) {
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	c.RuntimeParams["application_name"] = app
	return pgx.ConnectConfig(ctx, c)
}

// --- listening ---

// listen hears the other replicas until ctx ends, reconnecting with
// backoff; after each connection it resyncs what was written since heard,
// when every notice was last known heard (for the first, since the
// replica started).
func (r *replicas) listen(ctx context.Context, heard time.Time) {
	wait := listenBackoff
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, listenBackoffMax)
		return true
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if r.gate != nil {
			r.gate(attempt)
		}
		conn, err := r.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("listening to the other replicas", "err", err, "retry", wait)
			if !pause() {
				return
			}
			continue
		}
		// Listening now: whatever commits from here arrives as a notice;
		// what committed while not listening is in the tables.
		r.listenOnce.Do(func() { close(r.listening) })
		now := r.s.cfg.Now()
		r.resync(ctx, heard)
		connected := time.Now()
		heard = r.serve(ctx, conn, now)
		conn.Close(context.Background())
		// A connection that held a while is retried at once; one that
		// keeps failing as soon as it is made, with growing pauses.
		if time.Since(connected) > listenBackoffMax {
			wait = listenBackoff
		} else if !pause() {
			return
		}
	}
}

func (r *replicas) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	conn, err := connectAs(cctx, r.cfg, "peerscope-listen")
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, `LISTEN `+replicaChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// serve handles notices on conn until it fails or ctx ends, and returns
// until when every notice is known heard.
func (r *replicas) serve(ctx context.Context, conn *pgx.Conn, heard time.Time) time.Time {
	forgot := heard
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return heard
		case err == nil:
			// Notices arrive in commit order: all before this one are in.
			heard = r.s.cfg.Now()
			if heard.Sub(forgot) > listenPing {
				r.forgetStale() // as a quiet connection's pings do
				forgot = heard
			}
			r.handle(ctx, n.Payload)
		case pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded):
			at := r.s.cfg.Now()
			pctx, cancel := context.WithTimeout(ctx, notifyTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return heard
			}
			heard, forgot = at, at
			r.forgetStale()
		default:
			if ctx.Err() == nil {
				r.log.Warn("the other replicas' notices: connection lost", "err", err)
			}
			return heard
		}
	}
}

func (r *replicas) handle(ctx context.Context, payload string) {
	var n replicaNote
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		r.log.Warn("a replica's notice", "err", err)
		return
	}
	if n.Origin == r.origin {
		return // raised here already
	}
	s := r.s
	if !n.CountsOnly {
		s.lists.invalidate()
	}
	switch n.Kind {
	case EventLive, EventUpdate, EventEnded, EventReplay, EventInvited:
		b, err := s.store.entry(ctx, n.Broadcast)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				r.log.Warn("a replica's notice", "broadcast", n.Broadcast, "err", err)
			}
			return
		}
		switch {
		case n.Kind == EventInvited:
			e := Event{Kind: EventInvited, Listing: &b.Listing, followerIDs: make(map[int64]bool, len(n.Accounts)), private: true}
			for _, a := range n.Accounts {
				e.followerIDs[a] = true
			}
			s.hub.publish(e)
		case b.Private:
		case n.Kind == EventLive:
			if !b.Live() {
				return // ended since; its end follows
			}
			r.goLive(ctx, b)
		default:
			if e := (Event{Kind: n.Kind, Listing: &b.Listing}); r.track(e) {
				s.hub.publish(e)
			}
		}
	case EventScheduled:
		sc := &api.Scheduled{ID: n.Schedule}
		if n.Full {
			if got, _, err := s.schedules.schedule(ctx, n.Schedule); err == nil {
				sc = &got
			}
		}
		s.hub.publish(Event{Kind: EventScheduled, Schedule: sc})
	case EventReminder:
		sc, _, err := s.schedules.schedule(ctx, n.Schedule)
		if err != nil || sc.Who == nil {
			return
		}
		e := Event{Kind: EventReminder, Schedule: &sc, Step: n.Step, private: true}
		s.addFollowers(ctx, &e, sc.Who.Key())
		s.hub.publish(e)
		if s.cfg.OnLive != nil {
			s.cfg.OnLive(e)
		}
	}
}

// goLive tells this replica's streams and OnLive that b went live.
func (r *replicas) goLive(ctx context.Context, b *entry) {
	s := r.s
	e := Event{Kind: EventLive, Listing: &b.Listing}
	if !r.track(e) {
		return // told already (by a notice and a resync both)
	}
	if b.Who != nil {
		s.addFollowers(ctx, &e, b.Who.Key())
	}
	s.hub.publish(e)
	if s.cfg.OnLive != nil {
		s.cfg.OnLive(e)
	}
}

// changedSince returns the public broadcasts announced at or after t
// (their writer's clock), oldest first; with startedSince not zero, of
// the live ones only those started since then.
func (s *Server) changedSince(ctx context.Context, t, startedSince time.Time) ([]*entry, error) {
	var started int64 // 0: every live one
	if !startedSince.IsZero() {
		started = startedSince.UnixNano()
	}
	rows, err := s.store.r.QueryContext(ctx, `SELECT `+broadcastColumns+` FROM broadcasts b LEFT JOIN accounts a ON a.id = b.account
		WHERE b.private = 0 AND b.updated >= ? AND (b.ended != 0 OR b.started >= ?) ORDER BY b.updated`, t.UnixNano(), started)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*entry
	for rows.Next() {
		b, err := scanBroadcast(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// learnLive, when the replica starts, takes the broadcasts live now as
// told: its streams are new, and a resync must not announce as fresh
// what was live before.
func (r *replicas) learnLive(ctx context.Context) {
	now := r.s.cfg.Now()
	list, err := r.s.changedSince(ctx, now.Add(-r.s.cfg.LiveTTL-resyncMargin), time.Time{})
	if err != nil {
		r.log.Warn("the live broadcasts", "err", err)
		return
	}
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	for _, b := range list {
		if b.Live() {
			r.seen[b.ID] = now
		}
	}
}

// resync, after a gap in listening that began at heard, tells this
// replica's streams the go-lives and ends the gap hid.
func (r *replicas) resync(ctx context.Context, heard time.Time) {
	r.s.lists.invalidate()
	list, err := r.s.changedSince(ctx, heard.Add(-resyncMargin), time.Time{})
	if err != nil {
		r.log.Warn("resync after a reconnection", "err", err)
		return
	}
	for _, b := range list {
		if b.Live() {
			r.goLive(ctx, b)
		} else if e := (Event{Kind: EventEnded, Listing: &b.Listing}); r.track(e) {
			r.s.hub.publish(e)
		}
	}
	r.log.Debug("resynced", "since", heard, "broadcasts", len(list))
}

// forgetStale drops broadcasts not heard of for longer than a listing
// stays live without an announcement.
func (r *replicas) forgetStale() {
	cut := r.s.cfg.Now().Add(-r.s.cfg.LiveTTL - resyncMargin)
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	for id, at := range r.seen {
		if at.Before(cut) {
			delete(r.seen, id)
		}
	}
}

// --- a client's reconnection ---

// maxCatchUp bounds how far back a reconnecting stream is caught up; a
// client away longer reloads.
const maxCatchUp = 10 * time.Minute

// lastEventTime is the time of the last event a reconnecting client had
// (its Last-Event-ID, an event ID of stream), if it is one to catch up
// from.
func (s *Server) lastEventTime(r *http.Request) (time.Time, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" || len(v) > 20 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	t, now := time.Unix(0, n), s.cfg.Now()
	if t.After(now.Add(resyncMargin)) || t.Before(now.Add(-maxCatchUp)) {
		return time.Time{}, false
	}
	return t, true
}

// catchUp returns what a stream (account 0: the public one; else that
// account's feed) missed since it last had an event: the go-lives of the
// public broadcasts live now that started since, and (the public stream)
// the ends. The table keeps no time of going live, so "started since" is
// the start the broadcaster gave, less the margin and the clock skew
// allowed: a go-live that started a little before since may come twice;
// one first announced longer than that after the start it gives (nodes
// announce as they start) is not caught up.
func (s *Server) catchUp(ctx context.Context, since time.Time, account int64) []Event {
	from := since.Add(-resyncMargin)
	list, err := s.changedSince(ctx, from, from.Add(-s.cfg.ClockSkew))
	if err != nil {
		s.log.Warn("catching a stream up", "err", err)
		return nil
	}
	var out []Event
	for _, b := range list {
		if !b.Live() {
			if account == 0 {
				out = append(out, Event{Kind: EventEnded, Listing: &b.Listing})
			}
		} else {
			e := Event{Kind: EventLive, Listing: &b.Listing}
			if account != 0 {
				if b.Who == nil {
					continue
				}
				s.addFollowers(ctx, &e, b.Who.Key())
				if !e.followerIDs[account] {
					continue
				}
			}
			out = append(out, e)
		}
	}
	return out
}
