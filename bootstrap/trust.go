package bootstrap

import (
	"context"
	"sync"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// The trust statement (api.TrustStatement): the attestation keys and the
// revocations, signed by the bootstrap's identity key, in /api/v1/info and
// at /api/v1/trust, which nodes read again every refresh interval. It is
// signed once per trustCacheAge at most, or again as soon as this process
// revokes something.

// trustCacheAge bounds how stale a served statement is (a revocation made
// by another process, `peerscope bootstrap --revoke-…`, shows this late).
const trustCacheAge = time.Second

type trustCache struct {
	mu   sync.Mutex
	at   time.Time
	gen  uint64
	have uint64
	st   *api.Signed
}

// invalidate makes the next statement signed afresh.
func (c *trustCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// trustStatement returns the signed statement, signed afresh when the
// cached one is older than trustCacheAge or something was revoked since.
func (s *Server) trustStatement(ctx context.Context) (*api.Signed, error) {
	c := &s.trust
	now := s.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != nil && c.have == c.gen && now.Sub(c.at) < trustCacheAge && !now.Before(c.at) {
		return c.st, nil
	}
	// A key rotated or revoked by another process shows up here.
	if _, err := s.cfg.Keys.reload(); err != nil {
		s.log.Warn("key file not reloaded", "err", err)
	}
	keys := s.cfg.Keys.KeySet()
	revs, err := s.store.revocations(ctx, now)
	if err != nil {
		return nil, err
	}
	keys.Revocations = revs
	st, err := s.cfg.Keys.signTrust(api.TrustStatement{Issued: now.UTC(), Keys: keys})
	if err != nil {
		return nil, err
	}
	c.st, c.at, c.have = st, now, c.gen
	return st, nil
}
