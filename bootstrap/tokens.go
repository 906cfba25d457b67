package bootstrap

import (
	"fmt"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// Membership tokens in a private broadcast's mailbox: the broadcaster
// leaves one per device of its roster (audience.Token: broadcast, peer,
// roster version, expiry, signed by it), and each device takes its own.
//
//	broadcaster ─PUT …/tokens {tokens}─► signed by the broadcaster, signed in? each signed by it, unexpired,
//	            for a device peer of the stored roster, naming no newer roster? ─► tokens (one per peer, the newest)
//	member      ─GET …/tokens/{peer} (signed by peer)─► the newest roster lists peer? ─► its token, as signed
//
// A token is no secret (a parent sees it when the member presents it), but
// it says who watches what: it is handed only to the peer it names. The
// bootstrap checks the tokens' signatures, as it does the roster's: it
// must not keep one the broadcaster did not sign, for a device that would
// present it and be refused without knowing why.

// handlePutTokens: PUT /api/v1/broadcasts/{id}/tokens, signed by the
// broadcaster, signed in: all stored, durably, or none.
func (s *Server) handlePutTokens(w http.ResponseWriter, r *http.Request) {
	id, p, body, n, ok := s.byBroadcasterMax(w, r, "leave tokens for", s.audienceBody())
	if !ok {
		return
	}
	now := s.cfg.Now()
	tokens, raw, err := parseTokens(r, body, id, now)
	if err == nil {
		_, err = s.broadcasterAccount(r, p)
	}
	if err == nil {
		err = s.store.putTokens(r.Context(), tokenWrite{nonce: n, broadcast: id, tokens: tokens, raw: raw,
			now: now, replayTTL: s.cfg.ReplayTTL})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.TokensStored{Stored: len(tokens)})
}

// parseTokens reads a TokensPut for broadcast id: 1 to MaxTokensPerPut
// tokens, each of the broadcast, signed by its broadcaster and unexpired
// at now, one per peer. Every refusal is ErrBadRequest.
func parseTokens(r *http.Request, body []byte, id string, now time.Time) ([]*audience.Token, [][]byte, error) {
	var req api.TokensPut
	if err := decodeStrict(r, body, &req); err != nil {
		return nil, nil, err
	}
	if len(req.Tokens) == 0 || len(req.Tokens) > api.MaxTokensPerPut {
		return nil, nil, fmt.Errorf("%w: 1 to %d tokens", ErrBadRequest, api.MaxTokensPerPut)
	}
	tokens := make([]*audience.Token, len(req.Tokens))
	seen := make(map[peer.ID]bool, len(req.Tokens))
	for i, raw := range req.Tokens {
		t, err := audience.ParseToken(raw)
		if err == nil {
			err = t.Verify(id, t.Peer, now)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: token %d: %w", ErrBadRequest, i, err)
		}
		if seen[t.Peer] {
			return nil, nil, fmt.Errorf("%w: token %d: a second token for %s", ErrBadRequest, i, t.Peer)
		}
		seen[t.Peer] = true
		tokens[i] = t
	}
	return tokens, req.Tokens, nil
}

// handleGetToken: GET /api/v1/broadcasts/{id}/tokens/{peer}, signed by
// that peer: its token, while the newest roster lists it. Anyone else gets
// 403, as does a removed device.
func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := api.BroadcasterOf(id)
	var want peer.ID
	if err == nil {
		if want, err = peer.Decode(r.PathValue("peer")); err != nil {
			err = fmt.Errorf("%w: %q is not a peer ID", ErrBadRequest, clip(r.PathValue("peer"), 80))
		}
	}
	if err == nil && len(r.URL.Query()) > 0 {
		err = fmt.Errorf("%w: no parameters", ErrBadRequest)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, body, err := s.signed(w, r)
	switch {
	case err != nil:
	case len(body) > 0:
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	case p != want:
		err = fmt.Errorf("%w: a membership token is given only to the device it names", ErrForbidden)
	}
	if err == nil {
		err = s.liveKeys(r, id)
	}
	var res api.TokenResponse
	if err == nil {
		res.RosterVersion, res.Token, err = s.store.tokenFor(r.Context(), id, p.String())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
