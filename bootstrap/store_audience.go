package bootstrap

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// The private-audience keys in the store (schema migration 6): device
// keys, rosters with their accounts and devices, the bundles' mailbox and
// saved groups. Every write that a handler acknowledges has committed
// first (synchronous=FULL); those acting on a signed request keep its
// nonce in the same transaction.

// keepEpochs is how many epochs of bundles the mailbox keeps per device
// key: the current one, the next (wrapped ahead of a switch) and a few
// before it for stragglers. A member who joins late needs the newest only
// (the replay's manifest carries the older epochs' secrets, sealed).
const keepEpochs = 4

// deviceKeyRow is a device key as the store keeps it.
type deviceKeyRow struct {
	account              int64
	peer                 string
	fingerprint          audience.Fingerprint
	signed, attestation  []byte
	now, expires         time.Time // stored at now, attested until expires
	maxDevicesPerAccount int
}

// putDeviceKey stores a device key attested to an account: it replaces the
// peer's older keys, and refuses a device past the account's limit.
func (s *Store) putDeviceKey(ctx context.Context, d deviceKeyRow) error {
	return s.txLocked(ctx, []string{lockName("devices", d.account)}, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_keys WHERE peer = ?`, d.peer); err != nil {
			return err
		}
		var n int
		now := d.now.UnixNano()
		if err := tx.QueryRowContext(ctx, `
SELECT COUNT(*) FROM device_keys d JOIN sessions s ON s.peer = d.peer AND s.account = d.account
WHERE d.account = ? AND d.expires > ? AND s.expires > ?`, d.account, now, now).Scan(&n); err != nil {
			return err
		}
		if n >= d.maxDevicesPerAccount {
			return fmt.Errorf("%w: the account has %d devices with audience keys; sign one out", ErrRateLimited, n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO device_keys (fingerprint, account, peer, signed, attestation, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.fingerprint[:], d.account, d.peer, d.signed, d.attestation, now, d.expires.UnixNano())
		return err
	})
}

// sessionExpires returns when peer's session ends.
func (s *Store) sessionExpires(ctx context.Context, peer string) (time.Time, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT expires FROM sessions WHERE peer = ?`, peer).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, ErrNoSession
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("bootstrap: session: %w", err)
	}
	return time.Unix(0, n), nil
}

// deviceKeysOf returns the current device keys of an account: unexpired,
// of peers still signed in as it.
func (s *Store) deviceKeysOf(ctx context.Context, account int64, now time.Time) ([]api.DeviceKeyEntry, error) {
	rows, err := s.r.QueryContext(ctx, `
SELECT d.signed, d.attestation FROM device_keys d JOIN sessions s ON s.peer = d.peer AND s.account = d.account
WHERE d.account = ? AND d.expires > ? AND s.expires > ? ORDER BY d.created, d.fingerprint`, account, now.UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("bootstrap: device keys: %w", err)
	}
	defer rows.Close()
	out := []api.DeviceKeyEntry{}
	for rows.Next() {
		var e api.DeviceKeyEntry
		var att []byte
		if err := rows.Scan(&e.DeviceKey, &att); err != nil {
			return nil, err
		}
		e.Attestation = new(api.Signed)
		if err := json.Unmarshal(att, e.Attestation); err != nil {
			return nil, fmt.Errorf("bootstrap: device key attestation: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// accountsByHandle returns the accounts that show handle, in any case
// (by the index of migration 12), the first to sign in first.
func (s *Store) accountsByHandle(ctx context.Context, handle string) ([]Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, provider, subject, handle, name, avatar FROM accounts WHERE lower(handle) = lower(?) ORDER BY id LIMIT 8`, handle)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.ID, &a.Provider, &a.Subject, &a.Handle, &a.Name, &a.Avatar); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// mutuals returns the accounts signed in here that account (whose key is
// key) follows and that follow it.
func (s *Store) mutuals(ctx context.Context, account int64, key string) ([]api.Account, error) {
	rows, err := s.r.QueryContext(ctx, `
SELECT a.provider, a.subject, a.handle, a.name, a.avatar FROM follows f
JOIN accounts a ON a.provider = substr(f.followee, 1, instr(f.followee, ':') - 1) AND a.subject = substr(f.followee, instr(f.followee, ':') + 1)
WHERE f.follower = ? AND EXISTS (SELECT 1 FROM follows g WHERE g.follower = a.id AND g.followee = ?)
ORDER BY a.handle, a.provider, a.subject`, account, key)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: mutuals: %w", err)
	}
	defer rows.Close()
	out := []api.Account{}
	for rows.Next() {
		var a api.Account
		if err := rows.Scan(&a.Provider, &a.Subject, &a.Handle, &a.Name, &a.Avatar); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// privateListing checks, in a write transaction, that broadcast id is
// listed as private and that its replay has not expired at now.
func privateListing(ctx context.Context, tx *sql.Tx, id string, now time.Time, replayTTL time.Duration) error {
	var private bool
	var ended int64
	err := tx.QueryRowContext(ctx, `SELECT private, ended FROM broadcasts WHERE id = ?`, id).Scan(&private, &ended)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: no broadcast %s: list it as private first", ErrNotFound, clip(id, 80))
	case err != nil:
		return err
	case !private:
		return fmt.Errorf("%w: %s is listed as public", ErrNotPrivate, clip(id, 80))
	case ended != 0 && !now.Before(time.Unix(0, ended).Add(replayTTL)):
		return fmt.Errorf("%w: the broadcast's replay has expired", ErrStale)
	}
	return nil
}

// rosterWrite is a roster to store, with the signed request's nonce.
type rosterWrite struct {
	nonce     nonceRec
	roster    *audience.Roster
	now       time.Time
	replayTTL time.Duration
}

// putRoster stores a broadcast's roster if its version is above the
// stored one's (ErrStale), with its accounts and devices, and the nonce of
// the request that brought it, in one transaction: durable when it returns.
// While the broadcast is live it returns the accounts (signed in here at
// least once) that the roster adds, to tell them.
func (s *Store) putRoster(ctx context.Context, w rosterWrite) (added []int64, err error) {
	r := w.roster
	err = s.txLocked(ctx, []string{lockName("roster", r.Broadcast)}, func(tx *sql.Tx) error {
		if err := insertNonce(ctx, tx, w.nonce); err != nil {
			return err
		}
		if err := privateListing(ctx, tx, r.Broadcast, w.now, w.replayTTL); err != nil {
			return err
		}
		var have int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM rosters WHERE broadcast = ?`, r.Broadcast).Scan(&have)
		switch {
		case err == nil && uint64(have) >= r.Version:
			return fmt.Errorf("%w: roster version %d, stored %d", ErrStale, r.Version, have)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO rosters (broadcast, version, signed, updated) VALUES (?, ?, ?, ?)
ON CONFLICT (broadcast) DO UPDATE SET version = excluded.version, signed = excluded.signed, updated = excluded.updated`,
			r.Broadcast, int64(r.Version), r.Marshal(), w.now.UnixNano()); err != nil {
			return err
		}
		if added, err = addedAccounts(ctx, tx, r); err != nil {
			return err
		}
		return replaceMembers(ctx, tx, r, w.now)
	})
	return added, err
}

// addedAccounts returns the IDs of the accounts r lists that the stored
// roster does not, if the broadcast is live (before replaceMembers).
func addedAccounts(ctx context.Context, tx *sql.Tx, r *audience.Roster) ([]int64, error) {
	var ended int64
	if err := tx.QueryRowContext(ctx, `SELECT ended FROM broadcasts WHERE id = ?`, r.Broadcast).Scan(&ended); err != nil || ended != 0 {
		return nil, err
	}
	var ids []int64
	for _, m := range r.Members {
		var id int64
		err := tx.QueryRowContext(ctx, `
SELECT a.id FROM accounts a WHERE a.provider = substr(?1, 1, instr(?1, ':') - 1) AND a.subject = substr(?1, instr(?1, ':') + 1)
AND NOT EXISTS (SELECT 1 FROM audiences m WHERE m.broadcast = ?2 AND m.member = ?1)`, m.Account, r.Broadcast).Scan(&id)
		switch {
		case err == nil:
			ids = append(ids, id)
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		}
	}
	return ids, nil
}

// replaceMembers puts a roster's accounts and devices in place of the
// previous roster's.
func replaceMembers(ctx context.Context, tx *sql.Tx, r *audience.Roster, now time.Time) error {
	for _, q := range []string{`DELETE FROM audiences WHERE broadcast = ?`, `DELETE FROM roster_devices WHERE broadcast = ?`} {
		if _, err := tx.ExecContext(ctx, q, r.Broadcast); err != nil {
			return err
		}
	}
	acc, err := tx.PrepareContext(ctx, `INSERT INTO audiences (broadcast, member, added) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer acc.Close()
	dev, err := tx.PrepareContext(ctx, `INSERT INTO roster_devices (broadcast, peer, fingerprint) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, m := range r.Members {
		if _, err := acc.ExecContext(ctx, r.Broadcast, m.Account, now.UnixNano()); err != nil {
			return err
		}
		for _, d := range m.Devices {
			if _, err := dev.ExecContext(ctx, r.Broadcast, d.Peer.String(), d.Fingerprint[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// roster returns a broadcast's stored roster.
func (s *Store) roster(ctx context.Context, id string) (uint64, []byte, error) {
	var v int64
	var b []byte
	err := s.r.QueryRowContext(ctx, `SELECT version, signed FROM rosters WHERE broadcast = ?`, id).Scan(&v, &b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("%w: no roster for %s", ErrNotFound, clip(id, 80))
	}
	if err != nil {
		return 0, nil, fmt.Errorf("bootstrap: roster: %w", err)
	}
	return uint64(v), b, nil
}

// rosterPeer reports whether the broadcast's newest roster lists a device
// of peer.
func (s *Store) rosterPeer(ctx context.Context, id, peer string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM roster_devices WHERE broadcast = ? AND peer = ? LIMIT 1`, id, peer).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// bundleWrite is bundles to drop in a broadcast's mailbox, with the signed
// request's nonce, for the broadcaster's account, whose bundles may weigh
// quota bytes in all (negative: no bound).
type bundleWrite struct {
	nonce     nonceRec
	broadcast string
	bundles   []*audience.Bundle
	raw       [][]byte
	now       time.Time
	replayTTL time.Duration
	account   int64
	quota     int64
}

// rosterWriteStart begins a write that rests on a broadcast's stored roster
// (bundles, tokens): it records the request's nonce, checks the listing is
// private and not expired, and returns the stored roster's version.
func rosterWriteStart(ctx context.Context, tx *sql.Tx, n nonceRec, id string, now time.Time, replayTTL time.Duration) (int64, error) {
	if err := insertNonce(ctx, tx, n); err != nil {
		return 0, err
	}
	if err := privateListing(ctx, tx, id, now, replayTTL); err != nil {
		return 0, err
	}
	var version int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM rosters WHERE broadcast = ?`, id).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: no roster for %s: put the roster first", ErrNotFound, clip(id, 80))
	}
	return version, err
}

// putBundles stores bundles for devices of the broadcast's stored roster
// (a bundle for another device is refused, and then none is stored),
// keeping keepEpochs per device key, within the account's quota.
func (s *Store) putBundles(ctx context.Context, w bundleWrite) error {
	return s.txLocked(ctx, []string{lockName("roster", w.broadcast), lockName("bundles", w.account)}, func(tx *sql.Tx) error {
		version, err := rosterWriteStart(ctx, tx, w.nonce, w.broadcast, w.now, w.replayTTL)
		if err != nil {
			return err
		}
		st, err := prepareAll(ctx, tx, `SELECT 1 FROM roster_devices WHERE broadcast = ? AND fingerprint = ? LIMIT 1`,
			`INSERT INTO bundles (broadcast, recipient, epoch, signed, created, account, size) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (broadcast, recipient, epoch) DO UPDATE SET signed = excluded.signed, created = excluded.created, account = excluded.account, size = excluded.size`,
			`DELETE FROM bundles WHERE broadcast = ?1 AND recipient = ?2 AND epoch NOT IN
	(SELECT epoch FROM bundles WHERE broadcast = ?1 AND recipient = ?2 ORDER BY epoch DESC LIMIT ?3)`)
		if err != nil {
			return err
		}
		defer closeAll(st)
		listed, put, trim := st[0], st[1], st[2]
		for i, b := range w.bundles {
			var one int
			err := listed.QueryRowContext(ctx, w.broadcast, b.Recipient[:]).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: bundle %d is for a device key roster %d does not list", ErrBadRequest, i, version)
			}
			if err != nil {
				return err
			}
			if _, err := put.ExecContext(ctx, w.broadcast, b.Recipient[:], int64(b.Epoch), w.raw[i], w.now.UnixNano(), w.account, len(w.raw[i])); err != nil {
				return err
			}
			if _, err := trim.ExecContext(ctx, w.broadcast, b.Recipient[:], keepEpochs); err != nil {
				return err
			}
		}
		return checkQuota(ctx, tx, w.account, w.quota)
	})
}

// prepareAll prepares statements in a transaction; closeAll closes them.
func prepareAll(ctx context.Context, tx *sql.Tx, queries ...string) ([]*sql.Stmt, error) {
	var out []*sql.Stmt
	for _, q := range queries {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func closeAll(sts []*sql.Stmt) {
	for _, st := range sts {
		_ = st.Close()
	}
}

// checkQuota refuses (and so rolls back) a write that leaves an account's
// bundles weighing more than quota bytes.
func checkQuota(ctx context.Context, tx *sql.Tx, account, quota int64) error {
	if quota < 0 {
		return nil
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM bundles WHERE account = ?`, account).Scan(&n); err != nil {
		return err
	}
	if n > quota {
		return fmt.Errorf("%w: the account's private broadcasts would keep %d bytes of bundles, at most %d until they expire", ErrRateLimited, n, quota)
	}
	return nil
}

// bundlesFor returns the bundles of epoch since and later wrapped for the
// device keys that the broadcast's newest roster lists for peer, and the
// roster's version: ErrForbidden if it lists no device of peer.
func (s *Store) bundlesFor(ctx context.Context, id, peer string, since uint32) (uint64, [][]byte, error) {
	version, _, err := s.roster(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	member, err := s.rosterPeer(ctx, id, peer)
	if err != nil {
		return 0, nil, err
	}
	if !member {
		return 0, nil, fmt.Errorf("%w: roster %d of %s lists no device of %s", ErrForbidden, version, clip(id, 80), peer)
	}
	rows, err := s.r.QueryContext(ctx, `
SELECT b.signed FROM bundles b JOIN roster_devices d ON d.broadcast = b.broadcast AND d.fingerprint = b.recipient
WHERE b.broadcast = ? AND d.peer = ? AND b.epoch >= ? ORDER BY b.epoch, b.recipient`, id, peer, int64(since))
	if err != nil {
		return 0, nil, fmt.Errorf("bootstrap: bundles: %w", err)
	}
	defer rows.Close()
	out := [][]byte{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return 0, nil, err
		}
		out = append(out, b)
	}
	return version, out, rows.Err()
}

// broadcastEnd returns whether broadcast id is listed as private and when
// it ended (zero: live).
func (s *Store) broadcastEnd(ctx context.Context, id string) (private bool, ended time.Time, err error) {
	var e int64
	err = s.r.QueryRowContext(ctx, `SELECT private, ended FROM broadcasts WHERE id = ?`, id).Scan(&private, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, fmt.Errorf("%w: no broadcast %s", ErrNotFound, clip(id, 80))
	}
	return private, fromNanos(e), err
}

// scanWith scans a row's broadcast columns and then extra ones.
type scanWith struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (s scanWith) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra...)...) }

// invitations returns the private broadcasts whose newest roster lists
// the account key, live (updated since liveSince) or ended after
// endedSince (their replay not expired), newest first.
func (s *Store) invitations(ctx context.Context, key string, liveSince, endedSince time.Time) ([]api.Invitation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+broadcastColumns+`, r.version FROM audiences m
JOIN broadcasts b ON b.id = m.broadcast JOIN rosters r ON r.broadcast = b.id LEFT JOIN accounts a ON a.id = b.account
WHERE m.member = ? AND b.private = 1 AND ((b.ended = 0 AND b.updated > ?) OR (b.ended != 0 AND b.ended > ?))
ORDER BY b.started DESC LIMIT 200`, key, liveSince.UnixNano(), endedSince.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("bootstrap: invitations: %w", err)
	}
	defer rows.Close()
	out := []api.Invitation{}
	for rows.Next() {
		var v int64
		b, err := scanBroadcast(scanWith{row: rows, extra: []any{&v}})
		if err != nil {
			return nil, fmt.Errorf("bootstrap: invitations: %w", err)
		}
		out = append(out, api.Invitation{Listing: &b.Listing, RosterVersion: uint64(v)})
	}
	return out, rows.Err()
}

// tokenWrite is membership tokens to leave in a broadcast's mailbox, with
// the signed request's nonce.
type tokenWrite struct {
	nonce     nonceRec
	broadcast string
	tokens    []*audience.Token
	raw       [][]byte
	now       time.Time
	replayTTL time.Duration
}

// putTokens stores tokens for device peers of the broadcast's stored
// roster (a token for another peer, or naming a newer roster, is refused,
// and then none is stored); a token replaces its peer's older one (a lower
// roster version, or the same and an earlier expiry) and is itself dropped
// if older than the one held.
func (s *Store) putTokens(ctx context.Context, w tokenWrite) error {
	return s.txLocked(ctx, []string{lockName("roster", w.broadcast)}, func(tx *sql.Tx) error {
		version, err := rosterWriteStart(ctx, tx, w.nonce, w.broadcast, w.now, w.replayTTL)
		if err != nil {
			return err
		}
		st, err := prepareAll(ctx, tx, `SELECT 1 FROM roster_devices WHERE broadcast = ? AND peer = ? LIMIT 1`,
			`INSERT INTO tokens (broadcast, peer, roster_version, expires, signed, created) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (broadcast, peer) DO UPDATE SET roster_version = excluded.roster_version, expires = excluded.expires,
	signed = excluded.signed, created = excluded.created
WHERE (excluded.roster_version, excluded.expires) >= (tokens.roster_version, tokens.expires)`)
		if err != nil {
			return err
		}
		defer closeAll(st)
		listed, put := st[0], st[1]
		for i, t := range w.tokens {
			if t.RosterVersion > uint64(version) {
				return fmt.Errorf("%w: token %d names roster %d, the stored one is %d", ErrBadRequest, i, t.RosterVersion, version)
			}
			var one int
			err := listed.QueryRowContext(ctx, w.broadcast, t.Peer.String()).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: token %d is for %s, whom roster %d does not list", ErrBadRequest, i, t.Peer, version)
			}
			if err != nil {
				return err
			}
			if _, err := put.ExecContext(ctx, w.broadcast, t.Peer.String(), int64(t.RosterVersion), t.Expires.UnixNano(),
				w.raw[i], w.now.UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
}

// tokenFor returns the membership token held for peer: ErrForbidden if
// the broadcast's newest roster lists no device of peer, ErrNotFound if
// none was left for it.
func (s *Store) tokenFor(ctx context.Context, id, peer string) (uint64, []byte, error) {
	version, _, err := s.roster(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	member, err := s.rosterPeer(ctx, id, peer)
	if err != nil {
		return 0, nil, err
	}
	if !member {
		return 0, nil, fmt.Errorf("%w: roster %d of %s lists no device of %s", ErrForbidden, version, clip(id, 80), peer)
	}
	var v int64
	var b []byte
	err = s.r.QueryRowContext(ctx, `SELECT roster_version, signed FROM tokens WHERE broadcast = ? AND peer = ?`, id, peer).Scan(&v, &b)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("%w: no token for %s yet", ErrNotFound, peer)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("bootstrap: token: %w", err)
	}
	return uint64(v), b, nil
}

// --- saved groups ---

func (s *Store) putGroup(ctx context.Context, account int64, g api.Group, now time.Time) error {
	members, err := json.Marshal(g.Members)
	if err != nil {
		return err
	}
	return s.txLocked(ctx, []string{lockName("groups", account)}, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM audience_groups WHERE account = ? AND name != ?`, account, g.Name).Scan(&n); err != nil {
			return err
		}
		if n >= api.MaxGroups {
			return fmt.Errorf("%w: %d groups is the limit", ErrRateLimited, api.MaxGroups)
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO audience_groups (account, name, members, updated) VALUES (?, ?, ?, ?)
ON CONFLICT (account, name) DO UPDATE SET members = excluded.members, updated = excluded.updated`, account, g.Name, string(members), now.UnixNano())
		return err
	})
}

func (s *Store) groups(ctx context.Context, account int64, name string) ([]api.Group, error) {
	q, args := `SELECT name, members FROM audience_groups WHERE account = ?`, []any{account}
	if name != "" {
		q, args = q+` AND name = ?`, append(args, name)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: groups: %w", err)
	}
	defer rows.Close()
	out := []api.Group{}
	for rows.Next() {
		var g api.Group
		var members string
		if err := rows.Scan(&g.Name, &members); err != nil {
			return nil, err
		}
		if err := json.NewDecoder(strings.NewReader(members)).Decode(&g.Members); err != nil {
			return nil, fmt.Errorf("bootstrap: group %q: %w", g.Name, err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func (s *Store) deleteGroup(ctx context.Context, account int64, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM audience_groups WHERE account = ? AND name = ?`, account, name)
	if err != nil {
		return fmt.Errorf("bootstrap: delete group: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no group %q", ErrNotFound, name)
	}
	return nil
}
