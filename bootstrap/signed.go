package bootstrap

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Signed requests (api.SignRequest): the bootstrap accepts a time within
// ClockSkew of its own clock and each nonce once, remembered for twice the
// skew, so a captured request cannot be replayed.

// maxNonceLen bounds the nonce header (SignRequest sends 22 characters).
const maxNonceLen = 64

// nonceCache remembers the nonces of accepted requests until they could no
// longer pass the time check.
type nonceCache struct {
	mu   sync.Mutex
	seen map[string]time.Time // nonce → when it may be forgotten
	max  int
}

// use records a nonce; false if it was seen. When full, it forgets the
// expired entries, then refuses (better than letting a replay through).
func (c *nonceCache) use(peerNonce string, now, forget time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[peerNonce]; ok {
		return false
	}
	if len(c.seen) >= c.max {
		for k, t := range c.seen {
			if now.After(t) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return false
		}
	}
	c.seen[peerNonce] = forget
	return true
}

// verifyRequest checks a signed request and returns the peer that signed.
func (s *Server) verifyRequest(r *http.Request, body []byte) (peer.ID, error) {
	pidText, ts, nonce, sigText := r.Header.Get(api.HeaderPeer), r.Header.Get(api.HeaderTime), r.Header.Get(api.HeaderNonce), r.Header.Get(api.HeaderSignature)
	if pidText == "" || ts == "" || nonce == "" || sigText == "" {
		return "", fmt.Errorf("%w: missing %s, %s, %s or %s", ErrUnauthenticated, api.HeaderPeer, api.HeaderTime, api.HeaderNonce, api.HeaderSignature)
	}
	switch boot := r.Header.Get(api.HeaderBootstrap); {
	case boot == "":
		return "", errOldSignature
	case boot != s.cfg.Keys.ID():
		return "", fmt.Errorf("%w: signed for bootstrap %s; this is %s", errWrongBootstrap, clip(boot, 40), s.cfg.Keys.ID())
	}
	if len(nonce) > maxNonceLen || len(nonce) < 16 {
		return "", fmt.Errorf("%w: nonce of %d characters", ErrUnauthenticated, len(nonce))
	}
	pid, err := peer.Decode(pidText)
	if err != nil {
		return "", fmt.Errorf("%w: peer: %w", ErrUnauthenticated, err)
	}
	pub, err := pid.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("%w: the peer ID holds no public key", ErrUnauthenticated)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: time %q", ErrUnauthenticated, ts)
	}
	now := s.cfg.Now()
	at := time.UnixMilli(ms)
	if d := now.Sub(at); d > s.cfg.ClockSkew || d < -s.cfg.ClockSkew {
		return "", fmt.Errorf("%w: signed at %s, %s away from the bootstrap's clock", ErrUnauthenticated, at.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigText)
	if err != nil || len(sig) > 512 {
		return "", fmt.Errorf("%w: signature encoding", ErrUnauthenticated)
	}
	ok, err := pub.Verify(api.RequestPayload(s.cfg.Keys.ID(), r.Method, r.URL.RequestURI(), ts, nonce, body), sig)
	if err != nil || !ok {
		return "", fmt.Errorf("%w: the signature does not verify", ErrUnauthenticated)
	}
	if !s.nonces.use(pidText+" "+nonce, now, now.Add(2*s.cfg.ClockSkew)) {
		return "", fmt.Errorf("%w: nonce used before", ErrUnauthenticated)
	}
	return pid, nil
}
