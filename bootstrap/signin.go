package bootstrap

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Sign in with Twitter, bound to the person who finishes it.
//
// The node asks (start, signed): a state bound to its peer, a PKCE
// verifier, and where the browser should come back. The browser signs in at
// X and comes back to the callback, which checks the sign-in with X and
// stores the account and its tokens, but signs nothing for anyone: it makes
// a one-time code, bound to the peer that started the sign-in, and gives it
// to the browser that finished it, either by sending it back to the node's
// own page on loopback (in the URL's fragment) or by showing it. The node
// redeems it (finish, signed by the same peer): only then is there a
// session and an attestation.
//
// So a node that starts a sign-in and sends someone else the (genuine) X
// link gets nothing when they approve: the code goes to their browser, on
// their machine, and their node cannot redeem it (another peer started
// it); the page tells them that someone tried to sign in as them, and that
// nothing was signed.

// Limits of the one-time codes.
const (
	signinCodeLen  = 8 // characters of signinAlphabet: 40 bits
	signinAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	// signinMisses wrong codes from one peer within signinMissWindow void
	// its pending sign-ins.
	signinMisses     = 10
	signinMissWindow = time.Hour
	maxReturnURL     = 512
)

// checkReturnURL refuses a return URL that is not http(s) on a loopback
// address: the code must reach only a page on the machine of the browser
// that finished the sign-in.
func checkReturnURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || len(s) > maxReturnURL || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: return URL %q: an http(s) URL without a fragment", ErrBadRequest, clip(s, 80))
	}
	h := u.Hostname()
	if a, err := netip.ParseAddr(h); h != "localhost" && (err != nil || !a.Unmap().IsLoopback()) {
		return fmt.Errorf("%w: return URL %q: the node's own page on a loopback address (127.0.0.1, [::1], localhost) only", ErrBadRequest, clip(s, 80))
	}
	return nil
}

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
				err = fmt.Errorf("%w: unknown scope %q", ErrBadRequest, clip(sc, 40))
			}
		}
		if len(req.Scopes) > 2 {
			err = fmt.Errorf("%w: %d scopes", ErrBadRequest, len(req.Scopes))
		}
	}
	if err == nil {
		err = checkReturnURL(req.Return)
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
	st := oauthState{State: state, Peer: p.String(), Verifier: verifier, Scopes: scopes, Return: req.Return,
		Created: now, Expires: now.Add(s.cfg.OAuthStateTTL)}
	if err := s.store.putOAuthState(r.Context(), st); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.TwitterStartResponse{AuthorizeURL: s.cfg.Twitter.authorizeURL(state, challenge, scopes), Expires: st.Expires.UTC()})
}

// handleTwitterCallback is where X sends the browser back: the sign-in is
// checked with X, then handed to the browser as a one-time code for the
// node that started it.
func (s *Server) handleTwitterCallback(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Twitter.ClientID == "" {
		s.failCallback(w, r, fmt.Errorf("%w: sign-in with Twitter", ErrUnavailable), "")
		return
	}
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	if state == "" || len(state) > 128 {
		s.failCallback(w, r, fmt.Errorf("%w: missing or oversized state", ErrStateInvalid), "")
		return
	}
	// The state is consumed first, whatever follows: one state, one try.
	st, err := s.store.takeOAuthState(r.Context(), state, s.cfg.Now())
	if err != nil {
		s.failCallback(w, r, err, "")
		return
	}
	if e := q.Get("error"); e != "" {
		s.failCallback(w, r, fmt.Errorf("%w: the provider says %q", errProviderRefused, clip(e, 100)), st.Return)
		return
	}
	if code == "" || len(code) > 1024 {
		s.failCallback(w, r, fmt.Errorf("%w: missing or oversized code", ErrBadRequest), st.Return)
		return
	}
	acc, scopes, err := s.confirmWithX(r.Context(), code, st)
	if err != nil {
		s.failCallback(w, r, err, st.Return)
		return
	}
	grant, err := s.grantSignIn(r.Context(), st.Peer, acc, scopes)
	if err != nil {
		s.failCallback(w, r, err, st.Return)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	switch {
	case wantsJSON(r):
		writeJSON(w, http.StatusOK, grant)
	case st.Return != "":
		// Back to the node's own page on this machine: the fragment never
		// leaves the browser but for that page's script.
		http.Redirect(w, r, st.Return+"#signin="+grant.Code, http.StatusSeeOther)
	default:
		writeCallbackPage(w, http.StatusOK, callbackPageData{Code: &codePageData{SignInCode: grant, Handle: acc.Handle, Node: shortPeer(st.Peer)}})
	}
}

// confirmWithX exchanges the code with the state's verifier, reads who
// signed in, and stores the account and its tokens (sealed).
func (s *Server) confirmWithX(ctx context.Context, code string, st oauthState) (Account, string, error) {
	tw := &s.cfg.Twitter
	tok, err := tw.exchange(ctx, s.cfg.HTTPClient, code, st.Verifier)
	if err != nil {
		return Account{}, "", err
	}
	u, err := tw.me(ctx, s.cfg.HTTPClient, tok.AccessToken)
	if err != nil {
		return Account{}, "", err
	}
	acc := Account{Account: api.Account{Provider: "twitter", Subject: u.ID, Handle: "@" + u.Username, Name: u.Name, Avatar: u.ProfileImageURL}}
	if err := sanitizeAccount(&acc.Account); err != nil {
		return Account{}, "", fmt.Errorf("%w: %w", ErrProvider, err)
	}
	now := s.cfg.Now()
	if acc, err = s.store.UpsertAccount(ctx, acc, now); err != nil {
		return Account{}, "", err
	}
	scopes := tok.Scope
	if scopes == "" {
		scopes = st.Scopes
	}
	exp := time.Time{}
	if tok.ExpiresIn > 0 {
		exp = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	err = s.store.SetTokens(ctx, acc.ID, ProviderTokens{Access: tok.AccessToken, Refresh: tok.RefreshToken, Scopes: scopes, Expires: exp})
	return acc, scopes, err
}

// grantSignIn makes the one-time code that lets peer redeem a sign-in as
// acc.
func (s *Server) grantSignIn(ctx context.Context, peerText string, acc Account, scopes string) (api.SignInCode, error) {
	var rb [signinCodeLen]byte
	if _, err := io.ReadFull(s.cfg.Rand, rb[:]); err != nil {
		return api.SignInCode{}, err
	}
	var code strings.Builder
	for i, b := range rb {
		if i == signinCodeLen/2 {
			code.WriteByte('-')
		}
		code.WriteByte(signinAlphabet[int(b)%len(signinAlphabet)])
	}
	now := s.cfg.Now()
	exp := now.Add(s.cfg.OAuthStateTTL)
	err := s.store.putSignIn(ctx, peerText, s.signinHash(peerText, code.String()), acc.ID, scopes, now, exp)
	return api.SignInCode{Code: code.String(), Peer: peerText, Expires: exp.UTC()}, err
}

// signinHash keys a code to its peer, so the table alone gives no code.
func (s *Server) signinHash(peerText, code string) []byte {
	return s.phoneKey("signin", peerText, normalizeSigninCode(code))
}

// normalizeSigninCode reads a code as typed: case, dashes and spaces do
// not matter, and the letters a reader confuses with digits are those
// digits.
func normalizeSigninCode(c string) string {
	c = strings.ToUpper(c)
	c = strings.NewReplacer("-", "", " ", "", "O", "0", "I", "1", "L", "1").Replace(c)
	return c
}

// handleTwitterFinish redeems a sign-in: signed by the node that started
// it, with the code its browser was given.
func (s *Server) handleTwitterFinish(w http.ResponseWriter, r *http.Request) {
	p, body, err := s.signed(w, r)
	var req api.TwitterFinish
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	code := normalizeSigninCode(req.Code)
	if err == nil && (len(code) != signinCodeLen || strings.Trim(code, signinAlphabet) != "") {
		err = fmt.Errorf("%w: a sign-in code is %d letters and digits", ErrBadRequest, signinCodeLen)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	accID, scopes, err := s.store.takeSignIn(ctx, p.String(), s.signinHash(p.String(), code), s.cfg.Now(), hmac.Equal)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acc, err := s.store.accountByID(ctx, accID)
	if err != nil {
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
	writeJSON(w, http.StatusOK, res)
}

func shortPeer(p string) string {
	if len(p) > 6 {
		return "…" + p[len(p)-6:]
	}
	return p
}

// --- sign-out and sessions ---

// handleSignOut ends this node's session (or, Everywhere, every session of
// its account) and revokes the attestations it was given.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	p, body, err := s.signed(w, r)
	var req api.SignOut
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, now := r.Context(), s.cfg.Now()
	if req.Everywhere {
		acc, err := s.store.SessionAccount(ctx, p.String(), now)
		if err == nil {
			err = s.store.revokeAccount(ctx, acc.ID, acc.Key(), now, "signed out everywhere")
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
	} else if err := s.store.revokePeer(ctx, p.String(), now, "signed out"); err != nil {
		s.fail(w, r, err)
		return
	}
	s.trust.invalidate()
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	p, acc, body, err := s.session(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.sessionsOf(r.Context(), acc.ID, s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range list {
		list[i].Current = list[i].Peer == p.String()
	}
	writeJSON(w, http.StatusOK, api.SessionsResponse{Account: acc.Key(), Sessions: list})
}

// handleRevokeSession ends another node's session of the same account:
// say, one that got it through a phishing before sign-in was bound to its
// finisher.
func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	_, acc, body, err := s.session(w, r)
	var req api.RevokeSession
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	var target peer.ID
	if err == nil {
		if target, err = peer.Decode(req.Peer); err != nil {
			err = fmt.Errorf("%w: peer: %w", ErrBadRequest, err)
		}
	}
	ctx, now := r.Context(), s.cfg.Now()
	if err == nil {
		var other Account
		other, err = s.store.SessionAccount(ctx, target.String(), now)
		if err == nil && other.ID != acc.ID {
			err = ErrNoSession
		}
		if err != nil {
			err = fmt.Errorf("%w: %s has no session of this account", ErrNotFound, target)
		}
	}
	if err == nil {
		err = s.store.revokePeer(ctx, target.String(), now, "session revoked by its account")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.trust.invalidate()
	writeJSON(w, http.StatusOK, map[string]string{"revoked": target.String()})
}
