package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Requests that act for a node are signed with the node's libp2p key: the
// proof that whoever asks for an attestation, announces a broadcast or
// follows someone holds the peer's key. The signature covers
// RequestPayload,
//
//	"peerscope/bootstrap-request/2\0" ‖ bootstrap "\n" method "\n" path?query "\n" time "\n" nonce "\n" hex(sha256(body))
//
// and travels in five headers. The bootstrap is the fingerprint of the
// bootstrap the request is for (Info.ID): another bootstrap refuses it, so
// a request captured by one (or on the way to it) cannot be played to
// another. The bootstrap accepts a time within its clock skew of its own
// clock and each nonce once (kept durably for twice the skew, across
// restarts), so a captured request cannot be replayed to it either: the
// signed time and the fresh nonce are the challenge, without an extra
// round trip.
//
// Version 1 (before bootstraps were named: no HeaderBootstrap, another
// domain) is refused with ErrorCode "signature_version", so an old node
// hears clearly that it must be upgraded.
const (
	HeaderPeer      = "Peerscope-Peer"
	HeaderTime      = "Peerscope-Time" // Unix ms
	HeaderNonce     = "Peerscope-Nonce"
	HeaderSignature = "Peerscope-Signature"
	// HeaderBootstrap names the bootstrap the request is for (its
	// fingerprint); its presence marks a version-2 request.
	HeaderBootstrap = "Peerscope-Bootstrap"

	requestDomain = "peerscope/bootstrap-request/2\x00"
)

// RequestVersion is the version of signed requests this package makes and
// a bootstrap of this version takes (Info.RequestVersion).
const RequestVersion = 2

// RequestPayload is what a signed request's signature covers: the signer
// (SignRequest) and the verifier (the bootstrap) build it here, the one
// place that says it.
func RequestPayload(bootstrap, method, pathQuery, ts, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return fmt.Appendf([]byte(requestDomain), "%s\n%s\n%s\n%s\n%s\n%x", bootstrap, method, pathQuery, ts, nonce, sum)
}

// SignRequest signs r (whose body is body) with a node's key, at now, for
// the bootstrap whose fingerprint is bootstrap.
func SignRequest(r *http.Request, body []byte, key crypto.PrivKey, bootstrap string, now time.Time) error {
	if !ValidFingerprint(bootstrap) {
		return fmt.Errorf("bootstrap: sign request: %q is not a bootstrap's fingerprint", clip(bootstrap, 40))
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("bootstrap: sign request: %w", err)
	}
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig, err := key.Sign(RequestPayload(bootstrap, r.Method, r.URL.RequestURI(), ts, nonce, body))
	if err != nil {
		return fmt.Errorf("bootstrap: sign request: %w", err)
	}
	r.Header.Set(HeaderPeer, id.String())
	r.Header.Set(HeaderTime, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderBootstrap, bootstrap)
	r.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}
