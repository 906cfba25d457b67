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
//	"peerscope/bootstrap-request/1\0" ‖ method "\n" path?query "\n" time "\n" nonce "\n" hex(sha256(body))
//
// and travels in four headers. The bootstrap accepts a time within its
// clock skew of its own clock and each nonce once (it remembers nonces for
// twice the skew), so a captured request cannot be replayed: the signed
// time and the fresh nonce are the challenge, without an extra round trip.
const (
	HeaderPeer      = "Peerscope-Peer"
	HeaderTime      = "Peerscope-Time" // Unix ms
	HeaderNonce     = "Peerscope-Nonce"
	HeaderSignature = "Peerscope-Signature"

	requestDomain = "peerscope/bootstrap-request/1\x00"
)

// RequestPayload is what a signed request's signature covers: the signer
// (SignRequest) and the verifier (the bootstrap) build it here, the one
// place that says it.
func RequestPayload(method, pathQuery, ts, nonce string, body []byte) []byte {
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
	sig, err := key.Sign(RequestPayload(r.Method, r.URL.RequestURI(), ts, nonce, body))
	if err != nil {
		return fmt.Errorf("bootstrap: sign request: %w", err)
	}
	r.Header.Set(HeaderPeer, id.String())
	r.Header.Set(HeaderTime, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}
