package bootstrap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	trust, err := s.trustStatement(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k := s.cfg.Keys
	info := api.Info{Keys: k.KeySet(), ID: k.ID(), IdentityKey: k.IdentityKey(), Trust: trust, RequestVersion: api.RequestVersion,
		Twitter: s.cfg.Twitter.ClientID != "", Phone: s.cfg.Phone != nil, Time: s.cfg.Now().UTC()}
	if s.cfg.PeerInfo != nil {
		info.PeerID, info.Addrs = s.cfg.PeerInfo()
	}
	writeJSON(w, http.StatusOK, info)
}

// handleTrust answers the signed trust statement: the attestation keys and
// the revocations, what nodes refresh while they run.
func (s *Server) handleTrust(w http.ResponseWriter, r *http.Request) {
	trust, err := s.trustStatement(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, trust)
}

// signed reads a signed request's body, checks its signature, the
// per-peer rate and the nonce, and keeps the nonce durably: from then on
// the request may be acted on.
func (s *Server) signed(w http.ResponseWriter, r *http.Request) (peer.ID, []byte, error) {
	p, body, n, err := s.signedLater(w, r)
	if err == nil {
		err = s.store.saveNonce(r.Context(), n)
	}
	return p, body, err
}

// signedLater is signed for a caller that keeps the nonce durably with its
// own write (an announcement, in the same transaction).
func (s *Server) signedLater(w http.ResponseWriter, r *http.Request) (peer.ID, []byte, nonceRec, error) {
	return s.signedLaterMax(w, r, s.cfg.MaxBody)
}

// signedLaterMax is signedLater with a body of at most max bytes.
func (s *Server) signedLaterMax(w http.ResponseWriter, r *http.Request, max int64) (peer.ID, []byte, nonceRec, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		return "", nil, nonceRec{}, err
	}
	p, n, err := s.verifyRequest(r, body)
	return p, body, n, err
}

// session is signed, then the account the peer signed in as.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (peer.ID, Account, []byte, error) {
	p, body, err := s.signed(w, r)
	if err != nil {
		return "", Account{}, nil, err
	}
	a, err := s.store.SessionAccount(r.Context(), p.String(), s.cfg.Now())
	if err == nil && !s.accountLimit.allow(a.Key(), s.cfg.Now()) {
		err = fmt.Errorf("%w: too many requests from this account", ErrRateLimited)
	}
	return p, a, body, err
}

// issue signs and stores an attestation binding peer p to account a.
func (s *Server) issue(ctx context.Context, a Account, p peer.ID) (api.AttestationResponse, error) {
	if _, err := s.cfg.Keys.reload(); err != nil {
		s.log.Warn("key file not reloaded", "err", err)
	}
	now := s.cfg.Now()
	att := &identity.Attestation{
		Provider: a.Provider, Account: a.Subject, Handle: a.Handle, Name: a.Name, Avatar: a.Avatar,
		Peer: p, Issued: now, Expires: now.Add(s.cfg.AttestationTTL),
	}
	if err := att.Sign(s.cfg.Keys.Key()); err != nil {
		return api.AttestationResponse{}, fmt.Errorf("bootstrap: sign attestation: %w", err)
	}
	b := att.Marshal()
	if err := s.store.BindSession(ctx, p.String(), a.ID, now, now.Add(s.cfg.SessionTTL)); err != nil {
		return api.AttestationResponse{}, err
	}
	if err := s.store.saveAttestation(ctx, a.ID, att); err != nil {
		return api.AttestationResponse{}, err
	}
	return api.AttestationResponse{Attestation: b, ID: att.ID(), Account: a.Account, Peer: p.String(), Expires: att.Expires.UTC()}, nil
}

func (s *Server) handleAttestation(w http.ResponseWriter, r *http.Request) {
	p, body, err := s.signed(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, now := r.Context(), s.cfg.Now()
	b, err := s.store.latestAttestation(ctx, p.String(), now)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: no attestation for this peer: sign in first", err))
		return
	}
	a, err := identity.ParseAttestation(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.TrustSet().Verify(a, p, now) != nil {
		// Signed by a key revoked since: a node signed in gets one of the
		// current key.
		acc, err := s.store.SessionAccount(ctx, p.String(), now)
		if err != nil {
			s.fail(w, r, fmt.Errorf("%w: the attestation's key was revoked: sign in again", ErrNotFound))
			return
		}
		res, err := s.issue(ctx, acc, p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	id := a.Identity()
	writeJSON(w, http.StatusOK, api.AttestationResponse{Attestation: b, ID: a.ID(), Peer: p.String(), Expires: a.Expires.UTC(),
		Account: api.Account{Provider: id.Provider, Subject: id.Account, Handle: id.Handle, Name: id.Name, Avatar: id.Avatar}})
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var req api.VerifyRequest
	body, err := s.readBody(w, r)
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	var p peer.ID
	if err == nil {
		if p, err = peer.Decode(req.Peer); err != nil {
			err = fmt.Errorf("%w: peer: %w", ErrBadRequest, err)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := s.TrustSet().VerifyBytes(req.Attestation, p, s.cfg.Now())
	if err != nil {
		writeJSON(w, http.StatusOK, api.VerifyResponse{Reason: err.Error()})
		return
	}
	id := a.Identity()
	writeJSON(w, http.StatusOK, api.VerifyResponse{Valid: true, Identity: &id})
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

// sanitizeAccount fits a provider's profile into an attestation's limits:
// a name cut to its limit, an avatar that is not https dropped.
func sanitizeAccount(a *api.Account) error {
	if a.Subject == "" || len(a.Subject) > identity.MaxAccountLen || !identity.ValidText(a.Subject) {
		return fmt.Errorf("account ID %q", clip(a.Subject, 80))
	}
	clean := func(s string, n int) string {
		s = strings.Map(func(r rune) rune {
			if !identity.ValidText(string(r)) {
				return -1
			}
			return r
		}, s)
		for len(s) > n {
			_, size := utf8.DecodeLastRuneInString(s)
			s = s[:len(s)-size]
		}
		return s
	}
	a.Handle = clean(a.Handle, identity.MaxHandleLen)
	a.Name = clean(a.Name, identity.MaxNameLen)
	if !strings.HasPrefix(a.Avatar, "https://") || len(a.Avatar) > identity.MaxAvatarLen || !identity.ValidText(a.Avatar) {
		a.Avatar = ""
	}
	return nil
}
