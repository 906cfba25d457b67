package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// The private-audience keys role (issue 13; the routes are listed in
// package api's audience.go). The bootstrap checks and keeps what others
// signed — device keys (by their device's identity key), rosters and
// bundles (by the broadcaster) — as the bytes they signed, and adds one
// word of its own: that a device key belongs to the account its peer is
// signed in as (api.DeviceAttestation). It never holds a content key: a
// bundle is sealed to a device key whose private half never leaves the
// device. Rosters, bundles and saved groups are in mailbox.go.

// checkDeviceKey parses a device key published by peer p and checks it at
// now: its form, that it is p's (another's is ErrForbidden: attesting it
// here would give p's account a device it does not hold), its signature by
// p's identity key, its suite, its validity.
func (s *Server) checkDeviceKey(b []byte, p peer.ID, now time.Time) (*audience.DeviceKey, error) {
	k, err := audience.ParseDeviceKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if k.Peer != p {
		return nil, fmt.Errorf("%w: the device key is %s's, not the signer's", ErrForbidden, k.Peer)
	}
	if err := k.Verify(now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if k.Created.After(now.Add(s.cfg.ClockSkew)) {
		return nil, fmt.Errorf("%w: the device key is created in the future", ErrBadRequest)
	}
	return k, nil
}

// handlePublishDeviceKey: PUT /api/v1/device-keys, signed by a signed-in
// node. The key is attested to the session's account until the first of
// its own expiry, the session's and the attestation lifetime.
func (s *Server) handlePublishDeviceKey(w http.ResponseWriter, r *http.Request) {
	p, acc, body, err := s.session(w, r)
	var req api.DeviceKeyPublish
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	now := s.cfg.Now()
	var k *audience.DeviceKey
	if err == nil {
		k, err = s.checkDeviceKey(req.DeviceKey, p, now)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fp := k.Fingerprint()
	// The attestation outlives neither the key nor the session that
	// vouches for it (a sign-out ends serving it at once; a copy taken
	// before lasts until then at most).
	expires, err := s.store.sessionExpires(r.Context(), p.String())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, t := range []time.Time{now.Add(s.cfg.AttestationTTL), k.Expires} {
		if t.Before(expires) {
			expires = t
		}
	}
	att, err := api.SignDeviceAttestation(s.cfg.Keys.Key(), api.DeviceAttestation{
		Bootstrap: s.cfg.Keys.ID(), Account: acc.Key(), Handle: acc.Handle, Peer: p.String(), Fingerprint: fp[:],
		Issued: now, Expires: expires,
	})
	var attJSON []byte
	if err == nil {
		attJSON, err = json.Marshal(att)
	}
	if err == nil {
		err = s.store.putDeviceKey(r.Context(), deviceKeyRow{account: acc.ID, peer: p.String(), fingerprint: fp,
			signed: req.DeviceKey, attestation: attJSON, now: now, expires: expires,
			maxDevicesPerAccount: audience.MaxMemberDevices})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.DeviceKeyEntry{DeviceKey: req.DeviceKey, Attestation: att})
}

// handleDeviceKeys: GET /api/v1/device-keys?account=K&handle=H, for anyone:
// the current device keys of the accounts named, as their devices signed
// them, with the bootstrap's attestations.
func (s *Server) handleDeviceKeys(w http.ResponseWriter, r *http.Request) {
	accounts, handles, err := parseLookups(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	found, err := s.lookupAccounts(r, accounts, handles)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.DeviceKeysResponse{Accounts: []api.AccountDeviceKeys{}}
	now := s.cfg.Now()
	for _, a := range found {
		keys, err := s.store.deviceKeysOf(r.Context(), a.ID, now)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Accounts = append(out.Accounts, api.AccountDeviceKeys{Account: a.Account, Keys: keys})
	}
	writeJSON(w, http.StatusOK, out)
}

// parseLookups reads the accounts and handles GET /api/v1/device-keys asks
// for: account keys and handles, 1 to api.MaxDeviceKeyLookups in all,
// nothing else.
func parseLookups(q url.Values) (accounts, handles []string, err error) {
	accounts, handles = q["account"], q["handle"]
	n := len(accounts) + len(handles)
	for k := range q {
		if k != "account" && k != "handle" {
			return nil, nil, fmt.Errorf("%w: ask by account and handle only", ErrBadRequest)
		}
	}
	if n == 0 || n > api.MaxDeviceKeyLookups {
		return nil, nil, fmt.Errorf("%w: 1 to %d accounts and handles", ErrBadRequest, api.MaxDeviceKeyLookups)
	}
	for _, a := range accounts {
		if err := api.CheckAccountKey(a); err != nil {
			return nil, nil, err
		}
	}
	for _, h := range handles {
		if h == "" || len(h) > identity.MaxHandleLen || !identity.ValidText(h) {
			return nil, nil, fmt.Errorf("%w: handle %q", ErrBadRequest, clip(h, 80))
		}
	}
	return accounts, handles, nil
}

// lookupAccounts returns the accounts named by key or handle, each once,
// in the order asked; those unknown here are left out.
func (s *Server) lookupAccounts(r *http.Request, keys, handles []string) ([]Account, error) {
	seen := map[int64]bool{}
	var out []Account
	add := func(a Account) {
		if !seen[a.ID] {
			seen[a.ID] = true
			out = append(out, a)
		}
	}
	for _, k := range keys {
		a, err := s.store.AccountByKey(r.Context(), k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		add(a)
	}
	for _, h := range handles {
		list, err := s.store.accountsByHandle(r.Context(), h)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			add(a)
		}
	}
	return out, nil
}

// handleMutuals: GET /api/v1/audience/mutuals, signed in: the accounts that
// follow the asker's account and that it follows (Periscope's rule for
// private broadcasts).
func (s *Server) handleMutuals(w http.ResponseWriter, r *http.Request) {
	_, acc, body, err := s.session(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	var list []api.Account
	if err == nil {
		list, err = s.store.mutuals(r.Context(), acc.ID, acc.Key())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.MutualsResponse{Account: acc.Key(), Mutuals: list})
}

// handleInvitations: GET /api/v1/invitations, signed in: the private
// broadcasts whose newest roster lists the asker's account, live or with a
// replay not expired — what the node shows as "@bob invited you".
func (s *Server) handleInvitations(w http.ResponseWriter, r *http.Request) {
	_, acc, body, err := s.session(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	var list []api.Invitation
	if err == nil {
		now := s.cfg.Now()
		list, err = s.store.invitations(r.Context(), acc.Key(), now.Add(-s.cfg.LiveTTL), now.Add(-s.cfg.ReplayTTL))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.InvitationsResponse{Invitations: list})
}
