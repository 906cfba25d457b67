package bootstrap

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// entry is a directory entry as the store holds it: the listing the API
// shows, and what only the bootstrap keeps.
type entry struct {
	api.Listing
	account int64     // the broadcaster's account row; 0 when anonymous
	signed  []byte    // the signed request, kept for audit
	tweeted bool      // its link was posted once
	nonce   *nonceRec // the announcement's nonce, kept in the same transaction
	network string    // where the announcement came from (netKey)
	// capLive, when above 0, bounds the live listings of the same
	// account (or, anonymous, the same network) updated since liveSince:
	// a new one past it is refused.
	capLive   int
	liveSince int64
}

// putBroadcast stores an announcement if it is newer than the stored one
// (ErrStale otherwise). Announcements are committed in groups
// (commitLoop): one transaction, one fsync, for all the announcements that
// arrived while the previous group was being written; each caller returns
// once its own is durable.
func (s *Store) putBroadcast(ctx context.Context, b *entry) (putResult, error) {
	w := &putReq{b: b, done: make(chan struct{})}
	if b.nonce != nil {
		w.nonces = []nonceRec{*b.nonce}
	}
	if err := s.commit(ctx, w); err != nil {
		return putResult{}, err
	}
	return putResult{Fresh: w.fresh, WasLive: w.wasLive, CountsOnly: w.countsOnly}, w.err
}

// commit hands w to commitLoop and waits until it is durable (or failed).
func (s *Store) commit(ctx context.Context, w *putReq) error {
	select {
	case s.puts <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return fmt.Errorf("bootstrap: store closed")
	}
	<-w.done // once queued, it is written (or failed) whatever ctx does
	return nil
}

// saveNonce keeps a signed request's nonce durably (in the next group
// commit) before the request is acted on.
func (s *Store) saveNonce(ctx context.Context, n nonceRec) error {
	w := &putReq{nonces: []nonceRec{n}, done: make(chan struct{})}
	if err := s.commit(ctx, w); err != nil {
		return err
	}
	return w.err
}

// setNoncePrune says below which bucket the kept nonces may be deleted
// (the next group commit deletes them).
func (s *Store) setNoncePrune(below int64) {
	for {
		cur := s.nonceBelow.Load()
		if below <= cur || s.nonceBelow.CompareAndSwap(cur, below) {
			return
		}
	}
}

// pruneNonces deletes the nonces below the bucket setNoncePrune gave, once
// per new bound, in a group's transaction (owned by commitLoop). On a
// shared store one transaction at a time deletes them (lockPruneNonces; two
// deletes of the same rows, scanned in different orders, could deadlock):
// while another replica does, this group leaves them to the next.
func (s *Store) pruneNonces(tx *sql.Tx) error {
	below := s.nonceBelow.Load()
	if below <= s.noncePruned {
		return nil
	}
	if ok, err := s.tryLock(context.Background(), tx, lockPruneNonces); err != nil || !ok {
		return err
	}
	if _, err := tx.Exec(`DELETE FROM nonces WHERE bucket < ?`, below); err != nil {
		return err
	}
	s.noncePruned = below
	return nil
}

// lockPruneNonces is the lock of deleting the kept nonces (tryLock).
const lockPruneNonces = "prune nonces"

// loadNonces returns the nonces kept from bucket lowest on.
func (s *Store) loadNonces(ctx context.Context, lowest int64) ([]nonceRec, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT k, bucket FROM nonces WHERE bucket >= ?`, lowest)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: nonces: %w", err)
	}
	defer rows.Close()
	var out []nonceRec
	for rows.Next() {
		var k []byte
		var r nonceRec
		if err := rows.Scan(&k, &r.bucket); err != nil {
			return nil, err
		}
		copy(r.k[:], k)
		out = append(out, r)
	}
	return out, rows.Err()
}

// putResult says what an announcement changed.
type putResult struct {
	Fresh      bool // the broadcast is new here
	WasLive    bool // the stored one had not ended
	CountsOnly bool // only its viewer counts changed
}

type putReq struct {
	b              *entry // nil: nonces only
	nonces         []nonceRec
	fresh, wasLive bool
	countsOnly     bool // only the viewer counts changed
	err            error
	done           chan struct{}
}

// maxGroup bounds the announcements one transaction commits.
const maxGroup = 256

// commitLoop owns the writing of announcements until the store closes.
func (s *Store) commitLoop() {
	defer close(s.loopDone)
	for {
		var group []*putReq
		select {
		case w := <-s.puts:
			group = append(group, w)
		case <-s.closing:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case w := <-s.puts:
				group = append(group, w)
			default:
				break more
			}
		}
		began := time.Now()
		err := s.tx(context.Background(), func(tx *sql.Tx) error {
			if err := s.lockKeys(context.Background(), tx, groupLocks(group)...); err != nil {
				return err
			}
			if err := s.pruneNonces(tx); err != nil {
				return err
			}
			// The group's nonces in one statement and its stored rows
			// read in one: on PostgreSQL each statement is a round trip
			// to another process, and the group's transaction holds the
			// one writer connection while it waits.
			if err := s.putNonces(tx, group); err != nil {
				return err
			}
			stored, err := loadStored(tx, group)
			if err != nil {
				return err
			}
			up := tx.Stmt(s.stPutUpsert)
			for _, w := range group {
				if w.b == nil || w.err != nil {
					continue
				}
				if err := putOne(tx, up, stored, w); err != nil {
					return err
				}
			}
			return nil
		})
		s.metrics.observeGroup(len(group), time.Since(began), err)
		for _, w := range group {
			if err != nil {
				w.err = fmt.Errorf("bootstrap: store broadcast: %w", err)
			}
			close(w.done)
		}
	}
}

// groupLocks names what a group's announcements read and then write (see
// replicas.go): each broadcast (its version and ended checks), and the
// live listings of each capped account or anonymous network.
func groupLocks(group []*putReq) []string {
	var out []string
	for _, w := range group {
		b := w.b
		if b == nil {
			continue
		}
		out = append(out, lockName("broadcast", b.ID))
		if b.capLive > 0 {
			if b.account != 0 {
				out = append(out, lockName("live of", b.account))
			} else {
				out = append(out, lockName("live from", b.network))
			}
		}
	}
	return out
}

// putNonces keeps the group's nonces: one statement for all of them (in
// chunks, within SQLite's bound on a statement's variables). The table is
// the authority: a nonce already in it (kept by another replica sharing
// the database, since this process's memory let it through) refuses its
// request with errNonceUsed, and that request's announcement is not
// written. The rows go in by key order, so that two replicas' groups wait
// on each other's nonces in one order and cannot deadlock.
func (s *Store) putNonces(tx *sql.Tx, group []*putReq) error {
	var recs []nonceRec
	for _, w := range group {
		recs = append(recs, w.nonces...)
	}
	if len(recs) == 0 {
		return nil
	}
	if len(recs) == 1 {
		res, err := tx.Stmt(s.stNonce).Exec(recs[0].k[:], recs[0].bucket)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		for _, w := range group {
			if len(w.nonces) > 0 {
				w.err = errNonceUsed
			}
		}
		return nil
	}
	slices.SortFunc(recs, func(a, b nonceRec) int { return bytes.Compare(a.k[:], b.k[:]) })
	kept := make(map[[16]byte]bool, len(recs))
	for chunk := range slices.Chunk(recs, maxGroup) {
		args := make([]any, 0, 2*len(chunk))
		for _, n := range chunk {
			args = append(args, n.k[:], n.bucket)
		}
		rows, err := tx.Query(`INSERT INTO nonces (k, bucket) VALUES `+strings.Repeat(`(?, ?), `, len(chunk)-1)+
			`(?, ?) ON CONFLICT DO NOTHING RETURNING k`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k []byte
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			var kk [16]byte
			copy(kk[:], k)
			kept[kk] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if len(kept) == len(recs) {
		return nil
	}
	for _, w := range group {
		for _, n := range w.nonces {
			if !kept[n.k] {
				w.err = errNonceUsed
			}
		}
	}
	return nil
}

// insertNonce keeps a signed request's nonce in a transaction of its own
// write (a roster, bundles, tokens): errNonceUsed, and the transaction
// rolled back by its caller, when the table has it already.
func insertNonce(ctx context.Context, tx *sql.Tx, n nonceRec) error {
	res, err := tx.ExecContext(ctx, nonceInsert, n.k[:], n.bucket)
	if err != nil {
		return err
	}
	if k, err := res.RowsAffected(); err != nil || k == 1 {
		return err
	}
	return errNonceUsed
}

// storedRow is what an announcement is checked against: the broadcast's
// row as stored, or as the group's earlier announcement of it left it.
type storedRow struct {
	version     uint64
	ended       int64
	tweeted     bool
	private     bool
	title, link string
	lat, lon    sql.NullFloat64
}

// loadStored reads the stored rows of the group's broadcasts, by ID.
func loadStored(tx *sql.Tx, group []*putReq) (map[string]*storedRow, error) {
	out := map[string]*storedRow{}
	var ids []any
	for _, w := range group {
		if w.b != nil {
			if _, ok := out[w.b.ID]; !ok {
				out[w.b.ID] = nil
				ids = append(ids, w.b.ID)
			}
		}
	}
	clear(out)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(`SELECT id, version, ended, tweeted, title, link, private, lat, lon FROM broadcasts WHERE id IN (`+
		strings.Repeat(`?, `, len(ids)-1)+`?)`, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		r := &storedRow{}
		if err := rows.Scan(&id, &r.version, &r.ended, &r.tweeted, &r.title, &r.link, &r.private, &r.lat, &r.lon); err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

const (
	nonceInsert = `INSERT INTO nonces (k, bucket) VALUES (?, ?) ON CONFLICT DO NOTHING`
	putUpsert   = `
INSERT INTO broadcasts (id, broadcaster, account, title, link, private, started, ended, viewers, replay_viewers, version, updated, signed, tweeted, network,
	replay_viewers_identified, lat, lon)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, title = excluded.title, link = excluded.link, private = excluded.private,
	started = excluded.started, ended = excluded.ended, viewers = excluded.viewers, replay_viewers = excluded.replay_viewers,
	version = excluded.version, updated = excluded.updated, signed = excluded.signed,
	tweeted = CASE WHEN broadcasts.tweeted = 1 THEN 1 ELSE excluded.tweeted END, network = excluded.network,
	replay_viewers_identified = excluded.replay_viewers_identified, lat = excluded.lat, lon = excluded.lon
WHERE broadcasts.version < excluded.version`
)

// putOne writes one announcement in a group's transaction; a stale one is
// that caller's error only.
func putOne(tx *sql.Tx, up *sql.Stmt, stored map[string]*storedRow, w *putReq) error {
	ctx := context.Background()
	b := w.b
	r, ok := stored[b.ID]
	if !ok {
		r = &storedRow{}
	}
	version, ended, tweeted, private, title, link, lat, lon := r.version, r.ended, r.tweeted, r.private, r.title, r.link, r.lat, r.lon
	switch {
	case !ok:
		w.fresh = true
		if b.capLive > 0 && b.Ended.IsZero() {
			n, err := liveOf(tx, b)
			if err != nil {
				return err
			}
			if n >= b.capLive {
				who := "this network's anonymous broadcasters"
				if b.account != 0 {
					who = "this account"
				}
				w.err = fmt.Errorf("%w: %s already %d live broadcasts listed; sign in, or end one", ErrRateLimited, who, n)
				return nil
			}
		}
	case b.Version <= version:
		w.err = fmt.Errorf("%w: version %d, stored %d", ErrStale, b.Version, version)
		return nil
	case ended != 0 && b.Ended.IsZero():
		w.err = fmt.Errorf("%w: the broadcast has ended", ErrStale)
		return nil
	}
	w.wasLive = !w.fresh && ended == 0
	w.countsOnly = w.wasLive && b.Ended.IsZero() && title == b.Title && link == b.Link && private == b.Private &&
		sameLocation(lat, lon, b.Location)
	b.tweeted = b.tweeted || tweeted
	var account any
	if b.account != 0 {
		account = b.account
	}
	res, err := up.ExecContext(ctx, b.ID, b.Broadcaster, account, b.Title, b.Link, b.Private, b.Started.UnixNano(), nanos(b.Ended), b.Viewers, b.ReplayViewers,
		int64(b.Version), b.Updated.UnixNano(), b.signed, b.tweeted, b.network, b.ReplayViewersIdentified, latOf(b.Location), lonOf(b.Location))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		// The version check above read the stored row under the
		// broadcast's lock; this is the same check in the statement, so
		// that no path that skipped the lock writes an older version.
		w.err, w.fresh, w.wasLive, w.countsOnly = fmt.Errorf("%w: version %d not above the stored one", ErrStale, b.Version), false, false, false
		return nil
	}
	stored[b.ID] = &storedRow{version: b.Version, ended: nanos(b.Ended), tweeted: b.tweeted, private: b.Private, title: b.Title, link: b.Link,
		lat: nullFloat(latOf(b.Location)), lon: nullFloat(lonOf(b.Location))}
	return nil
}

func nullFloat(v any) sql.NullFloat64 {
	f, ok := v.(float64)
	return sql.NullFloat64{Float64: f, Valid: ok}
}

// latOf and lonOf are a listing's location as the store keeps it: NULL
// when the broadcaster did not share one.
func latOf(l *api.Location) any {
	if l == nil {
		return nil
	}
	return l.Lat
}

func lonOf(l *api.Location) any {
	if l == nil {
		return nil
	}
	return l.Lon
}

// sameLocation reports whether the stored location is l (a moved dot
// shows at once, like a new title).
func sameLocation(lat, lon sql.NullFloat64, l *api.Location) bool {
	if l == nil {
		return !lat.Valid
	}
	return lat.Valid && lon.Valid && lat.Float64 == l.Lat && lon.Float64 == l.Lon
}

// liveOf counts the live listings of b's account, or, anonymous, of b's
// network.
func liveOf(tx *sql.Tx, b *entry) (int, error) {
	var n int
	var err error
	if b.account != 0 {
		err = tx.QueryRow(`SELECT COUNT(*) FROM broadcasts WHERE account = ? AND ended = 0 AND updated > ?`, b.account, b.liveSince).Scan(&n)
	} else {
		err = tx.QueryRow(`SELECT COUNT(*) FROM broadcasts WHERE account IS NULL AND network = ? AND ended = 0 AND updated > ?`, b.network, b.liveSince).Scan(&n)
	}
	return n, err
}

// markTweeted records that the broadcast's link was posted.
func (s *Store) markTweeted(ctx context.Context, id string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE broadcasts SET tweeted = 1 WHERE id = ?`, id)
	return err
}

// setReplay records a broadcast's replay, listed until expires.
func (s *Store) setReplay(ctx context.Context, id, replay string, expires time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE broadcasts SET replay = ?, replay_expires = ? WHERE id = ? AND ended != 0`, replay, expires.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("bootstrap: store replay: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no ended broadcast %q", ErrNotFound, id)
	}
	return nil
}

const broadcastColumns = `b.id, b.broadcaster, COALESCE(b.account, 0), b.title, b.link, b.private, b.started, b.ended, b.viewers,
	b.replay_viewers, b.replay_viewers_identified, b.version, b.updated, b.replay, b.replay_expires, b.tweeted,
	COALESCE(a.provider, ''), COALESCE(a.subject, ''), COALESCE(a.handle, ''), COALESCE(a.name, ''), COALESCE(a.avatar, ''), b.lat, b.lon, b.thumb`

func scanBroadcast(row interface{ Scan(...any) error }) (*entry, error) {
	var b entry
	var started, ended, updated, replayExpires, version int64
	var who api.Account
	var lat, lon sql.NullFloat64
	err := row.Scan(&b.ID, &b.Broadcaster, &b.account, &b.Title, &b.Link, &b.Private, &started, &ended, &b.Viewers,
		&b.ReplayViewers, &b.ReplayViewersIdentified, &version, &updated, &b.Replay, &replayExpires, &b.tweeted,
		&who.Provider, &who.Subject, &who.Handle, &who.Name, &who.Avatar, &lat, &lon, &b.Thumbnail)
	if err != nil {
		return nil, err
	}
	b.Started, b.Ended, b.Updated, b.ReplayExpires = time.Unix(0, started), fromNanos(ended), time.Unix(0, updated), fromNanos(replayExpires)
	b.Version = uint64(version)
	if lat.Valid && lon.Valid {
		b.Location = &api.Location{Lat: lat.Float64, Lon: lon.Float64}
	}
	if b.account != 0 {
		b.Who = &who
	}
	return &b, nil
}

// entry returns one directory entry.
func (s *Store) entry(ctx context.Context, id string) (*entry, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+broadcastColumns+` FROM broadcasts b LEFT JOIN accounts a ON a.id = b.account WHERE b.id = ?`, id)
	b, err := scanBroadcast(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap: broadcast: %w", err)
	}
	return b, nil
}

// listBroadcasts returns public entries, newest first; live ones are those
// announced or updated within liveTTL of now. A follower (an account ID;
// 0: anyone) keeps those of the accounts it follows.
func (s *Store) listBroadcasts(ctx context.Context, q api.Query, follower int64, now time.Time, liveTTL time.Duration) ([]*api.Listing, error) {
	where := `b.private = 0 AND b.ended = 0 AND b.updated > ?`
	args := []any{now.Add(-liveTTL).UnixNano()}
	if q.Replays {
		where = `b.private = 0 AND b.ended != 0 AND b.replay != '' AND b.replay_expires > ?`
		args = []any{now.UnixNano()}
	}
	if q.Text != "" {
		pat := "%" + likeEscaper.Replace(q.Text) + "%"
		like := s.dialect.like()
		where += ` AND (b.title ` + like + ` ? ESCAPE '\' OR a.handle ` + like + ` ? ESCAPE '\' OR a.name ` + like + ` ? ESCAPE '\')`
		args = append(args, pat, pat, pat)
	}
	if follower != 0 {
		where += ` AND ` + followedBy
		args = append(args, follower)
	}
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+broadcastColumns+` FROM broadcasts b LEFT JOIN accounts a ON a.id = b.account
WHERE `+where+` ORDER BY b.started DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: list: %w", err)
	}
	defer rows.Close()
	out := []*api.Listing{}
	for rows.Next() {
		b, err := scanBroadcast(rows)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: list: %w", err)
		}
		out = append(out, &b.Listing)
	}
	return out, rows.Err()
}

// followedBy is the condition that keeps rows (with the account as a)
// whose account the account of its one argument follows: follows name
// accounts by key, and the follower's follows are read by the primary key.
const followedBy = `a.provider || ':' || a.subject IN (SELECT followee FROM follows WHERE follower = ?)`

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// --- follows ---

// follow records that account follows followee (an account key).
func (s *Store) follow(ctx context.Context, follower int64, followee string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO follows (follower, followee, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		follower, followee, now.UnixNano())
	if err != nil {
		return fmt.Errorf("bootstrap: follow: %w", err)
	}
	return nil
}

func (s *Store) unfollow(ctx context.Context, follower int64, followee string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM follows WHERE follower = ? AND followee = ?`, follower, followee)
	if err != nil {
		return fmt.Errorf("bootstrap: unfollow: %w", err)
	}
	return nil
}

// Following returns the account keys account follows.
func (s *Store) Following(ctx context.Context, account int64) ([]string, error) {
	return s.strings(ctx, `SELECT followee FROM follows WHERE follower = ? ORDER BY created, followee`, account)
}

// followers returns the IDs of the accounts that follow key.
func (s *Store) followers(ctx context.Context, key string) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT follower FROM follows WHERE followee = ?`, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (s *Store) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// putSuggestions stores whom an account may want to follow (imported from
// whom it follows on its provider).
func (s *Store) putSuggestions(ctx context.Context, account int64, list []api.Suggestion, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, g := range list {
			_, err := tx.ExecContext(ctx, `
INSERT INTO suggestions (account, followee, handle, name, avatar, imported) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (account, followee) DO UPDATE SET handle = excluded.handle, name = excluded.name, avatar = excluded.avatar, imported = excluded.imported`,
				account, g.Account, g.Handle, g.Name, g.Avatar, now.UnixNano())
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Suggestions returns an account's suggestions that it does not follow
// yet, those who signed in here first.
func (s *Store) Suggestions(ctx context.Context, account int64) ([]api.Suggestion, error) {
	rows, err := s.r.QueryContext(ctx, `
SELECT g.followee, g.handle, g.name, g.avatar, EXISTS (SELECT 1 FROM accounts a WHERE a.provider || ':' || a.subject = g.followee)
FROM suggestions g WHERE g.account = ? AND NOT EXISTS (SELECT 1 FROM follows f WHERE f.follower = g.account AND f.followee = g.followee)
ORDER BY 5 DESC, g.handle`, account)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: suggestions: %w", err)
	}
	defer rows.Close()
	out := []api.Suggestion{}
	for rows.Next() {
		var g api.Suggestion
		if err := rows.Scan(&g.Account, &g.Handle, &g.Name, &g.Avatar, &g.Here); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
