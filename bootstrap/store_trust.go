package bootstrap

import (
	"context"
	"fmt"
	"time"

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
