package bootstrap

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Revocations an operator makes (`peerscope bootstrap --revoke-…`), on the
// data directory, while the bootstrap runs or not: the running bootstrap's
// trust statement shows them within trustCacheAge, and nodes within their
// refresh interval.

// Revoke is what an operator revokes: exactly one field set.
type Revoke struct {
	Attestation string // an attestation's ID (identity.Attestation.ID)
	Peer        string // a node: its session and attestations
	Account     string // "provider:subject": every session and attestation
	Reason      string
}

// RevokeInDir carries out r on the bootstrap whose data directory is dir
// (its database the SQLite file there), at now.
func RevokeInDir(ctx context.Context, dir string, r Revoke, now time.Time) error {
	return RevokeIn(ctx, filepath.Join(dir, DBFile), r, now)
}

// RevokeIn carries out r on the bootstrap whose database is db (as
// OpenStore takes it), at now.
func RevokeIn(ctx context.Context, db string, r Revoke, now time.Time) error {
	n := 0
	for _, s := range []string{r.Attestation, r.Peer, r.Account} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: revoke one attestation, peer or account", ErrBadRequest)
	}
	st, err := OpenStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	reason := "by the operator"
	if r.Reason != "" {
		reason += ": " + r.Reason
	}
	switch {
	case r.Attestation != "":
		return st.revokeAttestation(ctx, strings.ToLower(r.Attestation), now, reason)
	case r.Peer != "":
		p, err := peer.Decode(r.Peer)
		if err != nil {
			return fmt.Errorf("%w: peer %q: %w", ErrBadRequest, clip(r.Peer, 80), err)
		}
		return st.revokePeer(ctx, p.String(), now, reason)
	default:
		if err := api.CheckAccountKey(r.Account); err != nil {
			return err
		}
		a, err := st.AccountByKey(ctx, r.Account)
		if err != nil {
			return fmt.Errorf("%w: no account %s here", err, r.Account)
		}
		return st.revokeAccount(ctx, a.ID, r.Account, now, reason)
	}
}
