package bootstrap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// --- revocations ---

// revoke records a revocation, published until r.Until.
func (s *Store) revoke(ctx context.Context, r identity.Revocation, reason string, now time.Time) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO revocations (attestation, peer, account, before, until, created, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Attestation, r.Peer, r.Account, nanos(r.Before), r.Until.UnixNano(), now.UnixNano(), clip(reason, 200))
	if err != nil {
		return fmt.Errorf("bootstrap: store revocation: %w", err)
	}
	return nil
}

// revocations returns the revocations still covering an attestation that
// has not expired at now, oldest first.
func (s *Store) revocations(ctx context.Context, now time.Time) ([]identity.Revocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT attestation, peer, account, before, until FROM revocations WHERE until > ? ORDER BY id LIMIT ?`,
		now.UnixNano(), identity.MaxRevocations)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: revocations: %w", err)
	}
	defer rows.Close()
	var out []identity.Revocation
	for rows.Next() {
		var r identity.Revocation
		var before, until int64
		if err := rows.Scan(&r.Attestation, &r.Peer, &r.Account, &before, &until); err != nil {
			return nil, err
		}
		r.Before, r.Until = fromNanos(before), time.Unix(0, until).UTC()
		if !r.Before.IsZero() {
			r.Before = r.Before.UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// attestationUntil returns when the attestation with ID aid expires, or
// ErrNotFound if this bootstrap never issued it.
func (s *Store) attestationUntil(ctx context.Context, aid string) (time.Time, error) {
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT MAX(expires) FROM attestations WHERE aid = ?`, aid).Scan(&exp)
	if err != nil || exp == 0 {
		return time.Time{}, fmt.Errorf("%w: no attestation %q issued here", ErrNotFound, clip(aid, 40))
	}
	return time.Unix(0, exp), nil
}

// --- sign-ins waiting for their node ---

// putSignIn records a sign-in the provider confirmed, for peer to redeem
// with the code whose keyed hash is code.
func (s *Store) putSignIn(ctx context.Context, peer string, code []byte, account int64, scopes string, now, expires time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM signins WHERE expires <= ?`, now.UnixNano()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO signins (peer, code, account, scopes, created, expires) VALUES (?, ?, ?, ?, ?, ?)`,
			peer, code, account, scopes, now.UnixNano(), expires.UnixNano())
		return err
	})
}

// takeSignIn redeems peer's sign-in whose code hashes to code: it is
// consumed and its account returned. A wrong code counts against the
// peer; signinMisses of them within signinMissWindow void its pending
// sign-ins (ErrLocked).
func (s *Store) takeSignIn(ctx context.Context, peer string, code []byte, now time.Time, equal func(a, b []byte) bool) (account int64, scopes string, err error) {
	var verdict error
	err = s.txLocked(ctx, []string{lockName("signins", peer)}, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, code, account, scopes FROM signins WHERE peer = ? AND expires > ?`, peer, now.UnixNano())
		if err != nil {
			return err
		}
		found := int64(0)
		for rows.Next() {
			var id, acc int64
			var h []byte
			var sc string
			if err := rows.Scan(&id, &h, &acc, &sc); err != nil {
				rows.Close()
				return err
			}
			if equal(h, code) && found == 0 {
				found, account, scopes = id, acc, sc
			}
		}
		rows.Close()
		if found != 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM signins WHERE id = ?`, found)
			return err
		}
		var misses int
		var window int64
		err = tx.QueryRowContext(ctx, `SELECT misses, "window" FROM signin_misses WHERE peer = ?`, peer).Scan(&misses, &window)
		if errors.Is(err, sql.ErrNoRows) || now.UnixNano()-window >= int64(signinMissWindow) {
			misses, window = 0, now.UnixNano()
		} else if err != nil {
			return err
		}
		misses++
		verdict = ErrCodeInvalid
		if misses >= signinMisses {
			verdict = fmt.Errorf("%w: %d wrong sign-in codes: this node's pending sign-ins are void; start again", ErrLocked, misses)
			if _, err := tx.ExecContext(ctx, `DELETE FROM signins WHERE peer = ?`, peer); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO signin_misses (peer, misses, "window") VALUES (?, ?, ?)
ON CONFLICT (peer) DO UPDATE SET misses = excluded.misses, "window" = excluded."window"`, peer, misses, window)
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("bootstrap: sign-in: %w", err)
	}
	return account, scopes, verdict
}

// accountByID returns an account by its row ID.
func (s *Store) accountByID(ctx context.Context, id int64) (Account, error) {
	var a Account
	err := s.r.QueryRowContext(ctx, `SELECT id, provider, subject, handle, name, avatar FROM accounts WHERE id = ?`, id).
		Scan(&a.ID, &a.Provider, &a.Subject, &a.Handle, &a.Name, &a.Avatar)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// --- sessions ended, attestations withdrawn ---

// revokePeer ends peer's session, voids its pending sign-ins and revokes
// the attestations issued to it before now.
func (s *Store) revokePeer(ctx context.Context, peer string, now time.Time, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM sessions WHERE peer = ?`, `DELETE FROM signins WHERE peer = ?`} {
			if _, err := tx.ExecContext(ctx, q, peer); err != nil {
				return err
			}
		}
		return revokeWhere(ctx, tx, identity.Revocation{Peer: peer, Before: now}, `peer = ?`, peer, now, reason)
	})
}

// revokeAccount ends every session of the account (key is its
// provider:subject) and revokes every attestation issued to it before now.
func (s *Store) revokeAccount(ctx context.Context, account int64, key string, now time.Time, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account = ?`, account); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signins WHERE account = ?`, account); err != nil {
			return err
		}
		return revokeWhere(ctx, tx, identity.Revocation{Account: key, Before: now}, `account = ?`, account, now, reason)
	})
}

// revokeAttestation revokes one attestation by its ID.
func (s *Store) revokeAttestation(ctx context.Context, aid string, now time.Time, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := revokeCount(ctx, tx, `aid = ?`, aid)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: no attestation %q issued here", ErrNotFound, clip(aid, 40))
		}
		if err != nil {
			return err
		}
		return revokeWhere(ctx, tx, identity.Revocation{Attestation: aid}, `aid = ?`, aid, now, reason)
	})
}

func revokeCount(ctx context.Context, tx *sql.Tx, where string, arg any) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM attestations WHERE `+where, arg).Scan(&n)
	return n, err
}

// revokeWhere marks the unexpired attestations matching where (issued
// before now) revoked and publishes r until the last of them expires.
// Nothing to revoke, nothing published.
func revokeWhere(ctx context.Context, tx *sql.Tx, r identity.Revocation, where string, arg any, now time.Time, reason string) error {
	var until sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT MAX(expires) FROM attestations WHERE `+where+` AND expires > ? AND issued < ?`,
		arg, now.UnixNano(), now.UnixNano()+1).Scan(&until)
	if err != nil || !until.Valid {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE attestations SET revoked = 1 WHERE `+where+` AND issued < ?`, arg, now.UnixNano()+1); err != nil {
		return err
	}
	if r.Before.IsZero() && r.Attestation == "" {
		return fmt.Errorf("%w: an empty revocation", ErrBadRequest)
	}
	if !r.Before.IsZero() {
		r.Before = now.Add(time.Nanosecond) // what was issued up to now, included
	}
	r.Until = time.Unix(0, until.Int64)
	_, err = tx.ExecContext(ctx, `INSERT INTO revocations (attestation, peer, account, before, until, created, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Attestation, r.Peer, r.Account, nanos(r.Before), r.Until.UnixNano(), now.UnixNano(), clip(reason, 200))
	return err
}

// sessionsOf lists the unexpired sessions of an account, newest first.
func (s *Store) sessionsOf(ctx context.Context, account int64, now time.Time) ([]api.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT peer, created, expires FROM sessions WHERE account = ? AND expires > ? ORDER BY created DESC`, account, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("bootstrap: sessions: %w", err)
	}
	defer rows.Close()
	out := []api.Session{}
	for rows.Next() {
		var x api.Session
		var c, e int64
		if err := rows.Scan(&x.Peer, &c, &e); err != nil {
			return nil, err
		}
		x.Created, x.Expires = time.Unix(0, c).UTC(), time.Unix(0, e).UTC()
		out = append(out, x)
	}
	return out, rows.Err()
}

// attested reports whether peer p is signed in here now (the relay serves
// such peers).
func (s *Server) attested(p peer.ID) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.store.SessionAccount(ctx, p.String(), s.cfg.Now())
	return err == nil
}

// lastRevocation returns the ID of the newest revocation (0 for none): it
// grows with every one, whichever process made it.
func (s *Store) lastRevocation(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MAX(id) FROM revocations`).Scan(&id)
	return id.Int64, err
}
