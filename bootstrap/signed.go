package bootstrap

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Requests that act for a node are signed with the node's libp2p key: the
// proof that whoever asks for an attestation, announces a broadcast or
// follows someone holds the peer's key. The signature covers
//
//	requestDomain ‖ method "\n" path?query "\n" time "\n" nonce "\n" hex(sha256(body))
//
// and travels in four headers. The bootstrap accepts a time within
// ClockSkew of its own clock and each nonce once (it remembers nonces for
// twice the skew), so a captured request cannot be replayed: the signed
// time and the fresh nonce are the challenge, without an extra round trip.
const (
	HeaderPeer      = "Peerscope-Peer"
	HeaderTime      = "Peerscope-Time" // Unix ms
	HeaderNonce     = "Peerscope-Nonce"
	HeaderSignature = "Peerscope-Signature"

	requestDomain = "peerscope/bootstrap-request/1\x00"
	maxNonceLen   = 64
)

func requestPayload(method, pathQuery, ts, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return fmt.Appendf([]byte(requestDomain), "%s\n%s\n%s\n%s\n%x", method, pathQuery, ts, nonce, sum)
}

// SignRequest signs r (whose body is body) with a node's key, at now.
func SignRequest(r *http.Request, body []byte, key crypto.PrivKey, now time.Time) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("bootstrap: sign request: %w", err)
	}
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig, err := key.Sign(requestPayload(r.Method, r.URL.RequestURI(), ts, nonce, body))
	if err != nil {
		return fmt.Errorf("bootstrap: sign request: %w", err)
	}
	r.Header.Set(HeaderPeer, id.String())
	r.Header.Set(HeaderTime, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}

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
	pidText, ts, nonce, sigText := r.Header.Get(HeaderPeer), r.Header.Get(HeaderTime), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if pidText == "" || ts == "" || nonce == "" || sigText == "" {
		return "", fmt.Errorf("%w: missing %s, %s, %s or %s", ErrUnauthenticated, HeaderPeer, HeaderTime, HeaderNonce, HeaderSignature)
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
	ok, err := pub.Verify(requestPayload(r.Method, r.URL.RequestURI(), ts, nonce, body), sig)
	if err != nil || !ok {
		return "", fmt.Errorf("%w: the signature does not verify", ErrUnauthenticated)
	}
	if !s.nonces.use(pidText+" "+nonce, now, now.Add(2*s.cfg.ClockSkew)) {
		return "", fmt.Errorf("%w: nonce used before", ErrUnauthenticated)
	}
	return pid, nil
}
