package bootstrap

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// Rosters and the mailbox of a private broadcast (saved groups are in
// groups.go).
//
//	broadcaster ─PUT …/audience {roster}─► signed by the broadcaster, signed in? listed private? roster signed by it, version grows?
//	            ─► rosters + audiences (accounts) + roster_devices (peers, fingerprints), one transaction with the nonce
//	            ─► an "invited" event in the feeds of the accounts it adds, while live
//	broadcaster ─PUT …/bundles {bundles}─► each of this broadcast, for a device of the stored roster, within the account's bound ─► bundles
//	member      ─GET …/bundles (signed)─► the newest roster lists a device of the signer? (403 if not)
//	            ─► the bundles for that device's fingerprints, as the broadcaster signed them
//
// The bootstrap checks the roster's signature (it must not store one a
// broadcaster did not sign, since it decides who gets bundles by it), but
// not the bundles' (only the broadcaster may put them, and each device
// checks its bundle's signature before it opens it). It cannot open a
// bundle: it holds no device's private key.

// audienceBody is the body limit of the roster and bundles routes.
func (s *Server) audienceBody() int64 { return max(s.cfg.MaxBody, api.MaxAudienceBody) }

// handlePutRoster: PUT /api/v1/broadcasts/{id}/audience, signed by the
// broadcaster, signed in. Durable before it is answered.
func (s *Server) handlePutRoster(w http.ResponseWriter, r *http.Request) {
	id, p, body, n, ok := s.byBroadcasterMax(w, r, "set the audience of", s.audienceBody())
	if !ok {
		return
	}
	var req api.RosterPut
	if err := decodeStrict(r, body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	roster, err := audience.ParseRoster(req.Roster)
	if err == nil {
		err = roster.Verify(id)
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	if _, err := s.broadcasterAccount(r, p); err != nil {
		s.fail(w, r, err)
		return
	}
	added, err := s.store.putRoster(r.Context(), rosterWrite{nonce: n, roster: roster, now: s.cfg.Now(), replayTTL: s.cfg.ReplayTTL})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(added) > 0 {
		s.tellInvited(r.Context(), id, added)
	}
	writeJSON(w, http.StatusOK, api.RosterResponse{Broadcast: id, Version: roster.Version})
}

// tellInvited puts a live private broadcast in the feeds of the accounts
// its roster just added (never in the public stream, nor on the go-live
// topic, which anyone reads): "@bob invited you", within the feed's
// latency of the roster change.
func (s *Server) tellInvited(ctx context.Context, id string, accounts []int64) {
	b, err := s.store.entry(ctx, id)
	if err != nil {
		s.log.Warn("invitation notice", "broadcast", id, "err", err)
		return
	}
	e := Event{Kind: EventInvited, Listing: &b.Listing, followerIDs: make(map[int64]bool, len(accounts)), private: true}
	for _, a := range accounts {
		e.followerIDs[a] = true
	}
	s.raise(ctx, e)
}

// broadcasterAccount is the account a broadcaster's node is signed in as:
// a private broadcast is for people picked by their accounts, and what its
// mailbox holds counts against its broadcaster's account (peer IDs are
// free; accounts are not), so rosters and bundles need a sign-in.
func (s *Server) broadcasterAccount(r *http.Request, p peer.ID) (Account, error) {
	now := s.cfg.Now()
	a, err := s.store.SessionAccount(r.Context(), p.String(), now)
	if err != nil {
		return a, fmt.Errorf("%w: a private broadcast's broadcaster signs in first", err)
	}
	if !s.accountLimit.allow(a.Key(), now) {
		return a, fmt.Errorf("%w: too many requests from this account", ErrRateLimited)
	}
	return a, nil
}

// handleGetRoster: GET /api/v1/broadcasts/{id}/audience, signed by the
// broadcaster or a device the roster lists.
func (s *Server) handleGetRoster(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	owner, err := api.BroadcasterOf(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, body, err := s.signed(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	if err == nil && p != owner {
		var member bool
		if member, err = s.store.rosterPeer(r.Context(), id, p.String()); err == nil && !member {
			err = fmt.Errorf("%w: only the broadcaster and the roster's devices see the roster", ErrForbidden)
		}
	}
	var version uint64
	var roster []byte
	if err == nil {
		version, roster, err = s.store.roster(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.RosterResponse{Broadcast: id, Version: version, Roster: roster})
}

// handlePutBundles: PUT /api/v1/broadcasts/{id}/bundles, signed by the
// broadcaster, signed in: each bundle of this broadcast, for a device key the stored
// roster lists; all stored, durably, or none.
func (s *Server) handlePutBundles(w http.ResponseWriter, r *http.Request) {
	id, p, body, n, ok := s.byBroadcasterMax(w, r, "fill the mailbox of", s.audienceBody())
	if !ok {
		return
	}
	var req api.BundlesPut
	err := decodeStrict(r, body, &req)
	if err == nil && (len(req.Bundles) == 0 || len(req.Bundles) > api.MaxBundlesPerPut) {
		err = fmt.Errorf("%w: 1 to %d bundles", ErrBadRequest, api.MaxBundlesPerPut)
	}
	bundles := make([]*audience.Bundle, len(req.Bundles))
	for i, raw := range req.Bundles {
		if err != nil {
			break
		}
		if bundles[i], err = audience.ParseBundle(raw); err != nil {
			err = fmt.Errorf("%w: bundle %d: %w", ErrBadRequest, i, err)
		} else if bundles[i].Broadcast != id {
			err = fmt.Errorf("%w: bundle %d is of another broadcast", ErrBadRequest, i)
		}
	}
	var acc Account
	if err == nil {
		acc, err = s.broadcasterAccount(r, p)
	}
	if err == nil {
		err = s.store.putBundles(r.Context(), bundleWrite{nonce: n, broadcast: id, bundles: bundles, raw: req.Bundles,
			now: s.cfg.Now(), replayTTL: s.cfg.ReplayTTL, account: acc.ID, quota: s.cfg.MaxAudienceBytes})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.BundlesStored{Stored: len(bundles)})
}

// handleGetBundles: GET /api/v1/broadcasts/{id}/bundles?since=EPOCH, signed
// by a member device: the bundles for its device keys in the newest
// roster. A device that roster does not list gets 403, whatever it was
// sent before; after the replay's expiry there is nothing.
func (s *Server) handleGetBundles(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := api.BroadcasterOf(id)
	var since uint64
	if err == nil && r.URL.Query().Has("since") {
		if since, err = strconv.ParseUint(r.URL.Query().Get("since"), 10, 32); err != nil || len(r.URL.Query()) > 1 {
			err = fmt.Errorf("%w: since is an epoch, from 0 to %d", ErrBadRequest, uint32(math.MaxUint32))
		}
	} else if err == nil && len(r.URL.Query()) > 0 {
		err = fmt.Errorf("%w: the only parameter is since", ErrBadRequest)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, body, err := s.signed(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	if err == nil {
		err = s.liveKeys(r, id)
	}
	var res api.BundlesResponse
	if err == nil {
		res.RosterVersion, res.Bundles, err = s.store.bundlesFor(r.Context(), id, p.String(), uint32(since))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// liveKeys checks that broadcast id is listed as private and that its keys
// have not expired with its replay (24 h after the end), before a member
// is handed its bundles or its token.
func (s *Server) liveKeys(r *http.Request, id string) error {
	private, ended, err := s.store.broadcastEnd(r.Context(), id)
	switch {
	case err != nil:
		return err
	case !private:
		return fmt.Errorf("%w: %s is listed as public", ErrNotPrivate, clip(id, 80))
	case !ended.IsZero() && !s.cfg.Now().Before(ended.Add(s.cfg.ReplayTTL)):
		return fmt.Errorf("%w: the broadcast's replay and its keys have expired", ErrNotFound)
	}
	return nil
}
