package bootstrap

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"
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
	body, err := s.readBody(w, r)
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
	return api.AttestationResponse{Attestation: b, Account: a.Account, Peer: p.String(), Expires: att.Expires.UTC()}, nil
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
	b, err := s.store.latestAttestation(r.Context(), p.String(), s.cfg.Now())
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: no attestation for this peer: sign in first", err))
		return
	}
	a, err := identity.ParseAttestation(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := a.Identity()
	writeJSON(w, http.StatusOK, api.AttestationResponse{Attestation: b, Peer: p.String(), Expires: a.Expires.UTC(),
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

// --- sign in with Twitter ---

func (s *Server) handleTwitterStart(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Twitter.ClientID == "" {
		s.fail(w, r, fmt.Errorf("%w: sign-in with Twitter", ErrUnavailable))
		return
	}
	p, body, err := s.signed(w, r)
	var req api.TwitterStart
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	if err == nil {
		for _, sc := range req.Scopes {
			if sc != api.ScopeFollows && sc != api.ScopeTweet {
				err = fmt.Errorf("%w: unknown scope %q", ErrBadRequest, sc)
			}
		}
		if len(req.Scopes) > 2 {
			err = fmt.Errorf("%w: %d scopes", ErrBadRequest, len(req.Scopes))
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now()
	var sb [24]byte
	if _, err := io.ReadFull(s.cfg.Rand, sb[:]); err != nil {
		s.fail(w, r, err)
		return
	}
	state := base64.RawURLEncoding.EncodeToString(sb[:])
	verifier, challenge := newVerifier()
	scopes := twitterScopes(req.Scopes)
	st := oauthState{State: state, Peer: p.String(), Verifier: verifier, Scopes: scopes, Created: now, Expires: now.Add(s.cfg.OAuthStateTTL)}
	if err := s.store.putOAuthState(r.Context(), st); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.TwitterStartResponse{AuthorizeURL: s.cfg.Twitter.authorizeURL(state, challenge, scopes), Expires: st.Expires.UTC()})
}

func (s *Server) handleTwitterCallback(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Twitter.ClientID == "" {
		s.fail(w, r, fmt.Errorf("%w: sign-in with Twitter", ErrUnavailable))
		return
	}
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	if state == "" || len(state) > 128 {
		s.fail(w, r, fmt.Errorf("%w: missing or oversized state", ErrStateInvalid))
		return
	}
	// The state is consumed first, whatever follows: one state, one try.
	st, err := s.store.takeOAuthState(r.Context(), state, s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if e := q.Get("error"); e != "" {
		s.fail(w, r, fmt.Errorf("%w: the provider says %q", errProviderRefused, clip(e, 100)))
		return
	}
	if code == "" || len(code) > 1024 {
		s.fail(w, r, fmt.Errorf("%w: missing or oversized code", ErrBadRequest))
		return
	}
	p, err := peer.Decode(st.Peer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	tw := &s.cfg.Twitter
	tok, err := tw.exchange(ctx, s.cfg.HTTPClient, code, st.Verifier)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := tw.me(ctx, s.cfg.HTTPClient, tok.AccessToken)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acc := Account{Account: api.Account{Provider: "twitter", Subject: u.ID, Handle: "@" + u.Username, Name: u.Name, Avatar: u.ProfileImageURL}}
	if err := sanitizeAccount(&acc.Account); err != nil {
		s.fail(w, r, fmt.Errorf("%w: %w", ErrProvider, err))
		return
	}
	now := s.cfg.Now()
	acc, err = s.store.UpsertAccount(ctx, acc, now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	scopes := tok.Scope
	if scopes == "" {
		scopes = st.Scopes
	}
	exp := time.Time{}
	if tok.ExpiresIn > 0 {
		exp = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if err := s.store.SetTokens(ctx, acc.ID, ProviderTokens{Access: tok.AccessToken, Refresh: tok.RefreshToken, Scopes: scopes, Expires: exp}); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.issue(ctx, acc, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if hasScope(scopes, "follows.read") {
		if _, err := s.importFollowing(ctx, acc); err != nil {
			s.log.Warn("importing follows after sign-in", "account", acc.Key(), "err", err)
		}
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, res)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = signedInPage.Execute(w, res)
}

var signedInPage = template.Must(template.New("in").Parse(`<!doctype html>
<meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Signed in — Peerscope</title>
<body style="font-family: system-ui, sans-serif; max-width: 32em; margin: 3em auto">
<h1>Signed in</h1>
<p id="who">You are <b>{{.Account.Handle}}</b>{{if .Account.Name}} ({{.Account.Name}}){{end}} on this bootstrap.</p>
<p>Your node <code>{{.Peer}}</code> now holds an attestation until {{.Expires.Format "2006-01-02"}}:
your comments show your name. You can close this page.</p>
<p><a href="/">The directory</a></p>
`))

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

// --- sign up with a phone ---

const (
	phoneCodeDigits = 6
	phoneCodeSpace  = 1_000_000 // 10^phoneCodeDigits
)

func (s *Server) phoneKey(parts ...string) []byte {
	m := hmac.New(sha256.New, s.cfg.Keys.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (s *Server) handlePhoneStart(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Phone == nil {
		s.fail(w, r, fmt.Errorf("%w: phone sign-up", ErrUnavailable))
		return
	}
	now := s.cfg.Now()
	if !s.phoneLimit.allow(netKey(clientIP(r, s.cfg.TrustedProxies)), now) {
		s.fail(w, r, fmt.Errorf("%w: too many codes asked from this address", ErrRateLimited))
		return
	}
	p, body, err := s.signed(w, r)
	var req api.PhoneStart
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	phone := ""
	if err == nil {
		var ok bool
		if phone, ok = normalizePhone(req.Phone); !ok {
			err = fmt.Errorf("%w: %q is not a phone number in E.164 form (+15550100)", ErrBadRequest, clip(req.Phone, 20))
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rb [8]byte
	if _, err := io.ReadFull(s.cfg.Rand, rb[:]); err != nil {
		s.fail(w, r, err)
		return
	}
	code := fmt.Sprintf("%0*d", phoneCodeDigits, binary.BigEndian.Uint64(rb[:])%phoneCodeSpace)
	phoneID := hex.EncodeToString(s.phoneKey("phone", phone))
	if err := s.store.beginPhone(r.Context(), phoneID, p.String(), s.phoneKey("code", phone, code), now, s.cfg.PhoneLimits); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Phone.SendCode(r.Context(), phone, code); err != nil {
		s.fail(w, r, fmt.Errorf("%w: sending the code: %w", ErrProvider, err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent": true, "expires": now.Add(s.cfg.PhoneLimits.CodeTTL).UTC()})
}

func (s *Server) handlePhoneVerify(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Phone == nil {
		s.fail(w, r, fmt.Errorf("%w: phone sign-up", ErrUnavailable))
		return
	}
	p, body, err := s.signed(w, r)
	var req api.PhoneVerify
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	phone := ""
	if err == nil {
		var ok bool
		if phone, ok = normalizePhone(req.Phone); !ok {
			err = fmt.Errorf("%w: not a phone number in E.164 form", ErrBadRequest)
		} else if len(req.Code) != phoneCodeDigits || strings.Trim(req.Code, "0123456789") != "" {
			err = fmt.Errorf("%w: the code is %d digits", ErrBadRequest, phoneCodeDigits)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	phoneID := hex.EncodeToString(s.phoneKey("phone", phone))
	if err := s.store.checkPhone(r.Context(), phoneID, p.String(), s.phoneKey("code", phone, req.Code), s.cfg.Now(), s.cfg.PhoneLimits, hmac.Equal); err != nil {
		s.fail(w, r, err)
		return
	}
	// The account ID is a keyed hash of the number: stable, and the
	// attestation (which everyone in a chat sees) does not give the number away.
	acc := Account{Account: api.Account{Provider: "phone", Subject: "p" + phoneID[:24], Handle: maskPhone(phone)}}
	acc, err = s.store.UpsertAccount(r.Context(), acc, s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.issue(r.Context(), acc, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
