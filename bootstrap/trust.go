package bootstrap

import (
	"context"
	"sync"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// The trust statement (api.TrustStatement): the attestation keys and the
// revocations, signed by the bootstrap's identity key, in /api/v1/info and
// at /api/v1/trust, which nodes read again every refresh interval. It is
// signed again only when something in it changed: a revocation (this
// process's or another's, `peerscope bootstrap --revoke-…`: the newest
// revocation's row ID tells) or the key file (rotated or revoked by
// another process: reload tells). So a revocation is in the very next
// statement a node reads.

type trustCache struct {
	mu      sync.Mutex
	st      *api.Signed
	lastRev int64 // the newest revocation's ID when st was signed
	pruned  bool  // a prune removed revocations since
}

// invalidate makes the next statement signed afresh.
func (c *trustCache) invalidate() {
	c.mu.Lock()
	c.pruned = true
	c.mu.Unlock()
}

// trustStatement returns the signed statement, signed afresh when the
// revocations or the keys changed since the last one.
func (s *Server) trustStatement(ctx context.Context) (*api.Signed, error) {
	c := &s.trust
	c.mu.Lock()
	defer c.mu.Unlock()
	keysChanged, err := s.cfg.Keys.reload()
	if err != nil {
		s.log.Warn("key file not reloaded", "err", err)
	}
	lastRev, err := s.store.lastRevocation(ctx)
	if err != nil {
		return nil, err
	}
	if c.st != nil && !keysChanged && !c.pruned && lastRev == c.lastRev {
		return c.st, nil
	}
	now := s.cfg.Now()
	keys := s.cfg.Keys.KeySet()
	if keys.Revocations, err = s.store.revocations(ctx, now); err != nil {
		return nil, err
	}
	st, err := s.cfg.Keys.signTrust(api.TrustStatement{Issued: now.UTC(), Keys: keys})
	if err != nil {
		return nil, err
	}
	c.st, c.lastRev, c.pruned = st, lastRev, false
	return st, nil
}
