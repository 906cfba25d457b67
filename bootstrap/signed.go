package bootstrap

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Signed requests (api.SignRequest): the bootstrap takes a request named
// for it, signed by the peer it says, at a time within ClockSkew of its own
// clock; then the peer's rate; then the nonce, once (nonces.go: kept by
// time bucket, durably before the request is acted on).

// maxNonceLen bounds the nonce header (SignRequest sends 22 characters).
const maxNonceLen = 64

// verifyRequest checks a signed request and returns the peer that signed
// and its nonce, taken in memory: the caller keeps it durably
// (Store.saveNonce, or with its own write) before acting on the request.
// The peer's rate is charged after the signature (so nobody spends
// another's budget) and before the nonce (so a peer over its rate fills no
// nonce memory).
func (s *Server) verifyRequest(r *http.Request, body []byte) (peer.ID, nonceRec, error) {
	pid, at, nonce, err := s.checkSignature(r, body)
	if err != nil {
		return "", nonceRec{}, err
	}
	now := s.cfg.Now()
	if !s.peerLimit.allow(pid.String(), now) {
		return "", nonceRec{}, fmt.Errorf("%w: too many requests from this peer", ErrRateLimited)
	}
	n := newNonceRec(pid.String(), nonce, s.nonces.bucket(at))
	lowest := s.nonces.bucket(now.Add(-s.cfg.ClockSkew))
	if err := s.nonces.use(n, lowest); err != nil {
		return "", nonceRec{}, err
	}
	s.store.setNoncePrune(lowest - 1)
	return pid, n, nil
}

// checkSignature checks a signed request's headers, time and signature,
// and returns the peer, the signed time and the nonce.
func (s *Server) checkSignature(r *http.Request, body []byte) (peer.ID, time.Time, string, error) {
	pidText, ts, nonce, sigText := r.Header.Get(api.HeaderPeer), r.Header.Get(api.HeaderTime), r.Header.Get(api.HeaderNonce), r.Header.Get(api.HeaderSignature)
	if pidText == "" || ts == "" || nonce == "" || sigText == "" {
		return "", time.Time{}, "", fmt.Errorf("%w: missing %s, %s, %s or %s", ErrUnauthenticated, api.HeaderPeer, api.HeaderTime, api.HeaderNonce, api.HeaderSignature)
	}
	switch boot := r.Header.Get(api.HeaderBootstrap); {
	case boot == "":
		return "", time.Time{}, "", errOldSignature
	case boot != s.cfg.Keys.ID():
		return "", time.Time{}, "", fmt.Errorf("%w: signed for bootstrap %s; this is %s", errWrongBootstrap, clip(boot, 40), s.cfg.Keys.ID())
	}
	if len(nonce) > maxNonceLen || len(nonce) < 16 {
		return "", time.Time{}, "", fmt.Errorf("%w: nonce of %d characters", ErrUnauthenticated, len(nonce))
	}
	pid, err := peer.Decode(pidText)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("%w: peer: %w", ErrUnauthenticated, err)
	}
	pub, err := pid.ExtractPublicKey()
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("%w: the peer ID holds no public key", ErrUnauthenticated)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("%w: time %q", ErrUnauthenticated, ts)
	}
	now := s.cfg.Now()
	at := time.UnixMilli(ms)
	if d := now.Sub(at); d > s.cfg.ClockSkew || d < -s.cfg.ClockSkew {
		return "", time.Time{}, "", fmt.Errorf("%w: signed at %s, %s away from the bootstrap's clock", ErrUnauthenticated, at.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigText)
	if err != nil || len(sig) > 512 {
		return "", time.Time{}, "", fmt.Errorf("%w: signature encoding", ErrUnauthenticated)
	}
	ok, err := pub.Verify(api.RequestPayload(s.cfg.Keys.ID(), r.Method, r.URL.RequestURI(), ts, nonce, body), sig)
	if err != nil || !ok {
		return "", time.Time{}, "", fmt.Errorf("%w: the signature does not verify", ErrUnauthenticated)
	}
	return pid, at, nonce, nil
}
