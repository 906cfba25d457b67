package bootstrap

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// fedEntry is a federated entry that verified, with what was verified.
type fedEntry struct {
	v      api.VerifiedListing
	signed api.SignedListing
	key    [32]byte // entryKey
}

// fedChange is what a community's new export changed here, for the event
// stream.
type fedChange struct {
	kind    string
	listing *api.Listing
}

// listing is the entry as this bootstrap lists it.
func (e *fedEntry) listing(o api.Origin) *api.Listing {
	u := &e.v.Update
	l := &api.Listing{ID: e.v.ID, Broadcaster: e.v.Broadcaster.String(), Title: u.Title, Link: u.Link, Started: u.Started,
		Viewers: u.Viewers, Version: u.Version, Updated: e.v.Signed, Origin: &o}
	if u.Location != nil {
		c := u.Location.Coarse()
		l.Location = &c
	}
	return l
}

const federatedUpsert = `
INSERT INTO federated (origin, origin_id, id, broadcaster, title, link, started, viewers, version, signed_at, lat, lon, record)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (origin, id) DO UPDATE SET origin_id = excluded.origin_id, broadcaster = excluded.broadcaster, title = excluded.title,
	link = excluded.link, started = excluded.started, viewers = excluded.viewers, version = excluded.version,
	signed_at = excluded.signed_at, lat = excluded.lat, lon = excluded.lon, record = excluded.record`

// syncFederated makes a community's rows its latest export, in one
// transaction: entries new or of a higher version are written, the rest
// of its rows deleted, as are those signed before stale. With staleOnly
// (the community could not be read), only those signed before stale go.
// It returns what changed and how many rows the community keeps.
func (s *Store) syncFederated(ctx context.Context, o api.Origin, entries []fedEntry, stale time.Time, staleOnly bool) ([]fedChange, int, error) {
	var changes []fedChange
	var held int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		changes, held = changes[:0], 0
		rows, err := tx.QueryContext(ctx, `SELECT `+federatedColumns+` FROM federated WHERE origin = ?`, o.URL)
		if err != nil {
			return err
		}
		stored := map[string]*api.Listing{}
		for rows.Next() {
			l, err := scanFederated(rows)
			if err != nil {
				rows.Close()
				return err
			}
			stored[l.ID] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, e := range entries {
			keep[e.v.ID] = true
			old, had := stored[e.v.ID]
			if had && old.Version >= e.v.Update.Version {
				continue // unchanged, or an older version than one already seen
			}
			rec, err := json.Marshal(e.signed)
			if err != nil {
				return err
			}
			l := e.listing(o)
			_, err = tx.ExecContext(ctx, federatedUpsert, o.URL, o.Bootstrap, l.ID, l.Broadcaster, l.Title, l.Link, l.Started.UnixNano(), l.Viewers,
				int64(l.Version), l.Updated.UnixNano(), latOf(l.Location), lonOf(l.Location), rec)
			if err != nil {
				return err
			}
			stored[l.ID] = l
			kind := EventUpdate
			if !had {
				kind = EventLive
			}
			changes = append(changes, fedChange{kind, l})
		}
		for id, l := range stored {
			if (staleOnly || keep[id]) && l.Updated.After(stale) {
				held++
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM federated WHERE origin = ? AND id = ?`, o.URL, id); err != nil {
				return err
			}
			changes = append(changes, fedChange{EventEnded, l})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bootstrap: federated entries: %w", err)
	}
	return changes, held, nil
}

const federatedColumns = `origin, origin_id, id, broadcaster, title, link, started, viewers, version, signed_at, lat, lon`

func scanFederated(row interface{ Scan(...any) error }) (*api.Listing, error) {
	var l api.Listing
	var o api.Origin
	var started, version, signed int64
	var lat, lon sql.NullFloat64
	if err := row.Scan(&o.URL, &o.Bootstrap, &l.ID, &l.Broadcaster, &l.Title, &l.Link, &started, &l.Viewers, &version, &signed, &lat, &lon); err != nil {
		return nil, err
	}
	if u, err := url.Parse(o.URL); err == nil {
		o.Name = u.Host
	}
	l.Started, l.Updated, l.Version, l.Origin = time.Unix(0, started), time.Unix(0, signed), uint64(version), &o
	if lat.Valid && lon.Valid {
		l.Location = &api.Location{Lat: lat.Float64, Lon: lon.Float64}
	}
	return &l, nil
}

// listFederated returns the federated entries a live query selects (by
// title: an account is the community's to vouch for, and is not
// carried), signed after stale, the newest first.
func (s *Store) listFederated(ctx context.Context, q api.Query, stale time.Time) ([]*api.Listing, error) {
	where, args := `signed_at > ?`, []any{stale.UnixNano()}
	if q.Text != "" {
		where += ` AND title ` + s.dialect.like() + ` ? ESCAPE '\'`
		args = append(args, "%"+likeEscaper.Replace(q.Text)+"%")
	}
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+federatedColumns+` FROM federated WHERE `+where+` ORDER BY started DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: federated list: %w", err)
	}
	defer rows.Close()
	var out []*api.Listing
	for rows.Next() {
		l, err := scanFederated(rows)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: federated list: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// federatedProof returns a federated entry's origin and signed
// announcement (the newest, should two communities list it).
func (s *Store) federatedProof(ctx context.Context, id string, stale time.Time) (api.FederatedProof, error) {
	var p api.FederatedProof
	var rec []byte
	err := s.r.QueryRowContext(ctx, `SELECT origin, origin_id, record FROM federated WHERE id = ? AND signed_at > ? ORDER BY signed_at DESC LIMIT 1`,
		id, stale.UnixNano()).Scan(&p.Origin.URL, &p.Origin.Bootstrap, &rec)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: no federated broadcast %q", ErrNotFound, clip(id, 80))
	}
	if err == nil {
		err = json.Unmarshal(rec, &p.Signed)
	}
	if err != nil {
		return p, fmt.Errorf("bootstrap: federated proof: %w", err)
	}
	if u, err := url.Parse(p.Origin.URL); err == nil {
		p.Origin.Name = u.Host
	}
	return p, nil
}

// dropFederatedExcept deletes the rows of communities not in origins.
func (s *Store) dropFederatedExcept(ctx context.Context, origins []string) error {
	q, args := `DELETE FROM federated`, []any{}
	if len(origins) > 0 {
		q += ` WHERE origin NOT IN (` + strings.Repeat(`?, `, len(origins)-1) + `?)`
		for _, o := range origins {
			args = append(args, o)
		}
	}
	_, err := s.w.ExecContext(ctx, q, args...)
	return err
}

// exportLive returns the public live listings made here (never the
// federated ones), as their broadcasters signed them, the newest first,
// at most limit. A listing whose signed body holds a location finer than
// the directory shows is left out: the broadcaster told this bootstrap,
// which shows only the coarse one, and no other.
func (s *Store) exportLive(ctx context.Context, since time.Time, limit int) ([]api.SignedListing, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT signed FROM broadcasts WHERE private = 0 AND ended = 0 AND updated > ? ORDER BY started DESC LIMIT ?`,
		since.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: export: %w", err)
	}
	defer rows.Close()
	out := []api.SignedListing{}
	for rows.Next() {
		var rec []byte
		if err := rows.Scan(&rec); err != nil {
			return nil, fmt.Errorf("bootstrap: export: %w", err)
		}
		sl, ok := parseSignedRecord(rec)
		if !ok {
			continue
		}
		var u struct {
			Location *api.Location `json:"location"`
		}
		if json.Unmarshal(sl.Body, &u) != nil || (u.Location != nil && *u.Location != u.Location.Coarse()) {
			continue
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}
