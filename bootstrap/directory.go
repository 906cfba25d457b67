package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// maxQueryText bounds a directory search.
const maxQueryText = 100

// byBroadcaster checks that a request about the broadcast in the path is
// signed by its broadcaster (whose peer ID the broadcast ID names), and
// returns the ID, the signer, the body and the nonce to keep; on failure
// it has answered.
func (s *Server) byBroadcaster(w http.ResponseWriter, r *http.Request, what string) (id string, p peer.ID, body []byte, n nonceRec, ok bool) {
	return s.byBroadcasterMax(w, r, what, s.cfg.MaxBody)
}

// byBroadcasterMax is byBroadcaster with a body of at most max bytes.
func (s *Server) byBroadcasterMax(w http.ResponseWriter, r *http.Request, what string, max int64) (id string, p peer.ID, body []byte, n nonceRec, ok bool) {
	id = r.PathValue("id")
	owner, err := api.BroadcasterOf(id)
	if err == nil {
		p, body, n, err = s.signedLaterMax(w, r, max)
	}
	if err == nil && p != owner {
		err = fmt.Errorf("%w: only the broadcaster %s may %s %s", ErrForbidden, owner, what, clip(id, 80))
	}
	if err != nil {
		s.fail(w, r, err)
		return "", "", nil, n, false
	}
	return id, p, body, n, true
}

func (s *Server) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	id, p, body, n, ok := s.byBroadcaster(w, r, "announce")
	if !ok {
		return
	}
	var a api.ListingUpdate
	if err := decodeStrict(r, body, &a); err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now()
	if err := a.Check(id, now, s.cfg.ClockSkew); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	b := &entry{Listing: api.Listing{ID: id, Broadcaster: p.String(), Title: a.Title, Link: a.Link, Private: a.Private,
		Started: a.Started, Ended: a.Ended, Viewers: a.Viewers, ReplayViewers: a.ReplayViewers, ReplayViewersIdentified: a.ReplayViewersIdentified,
		Version: a.Version, Updated: now}, signed: signedRecord(r, body), nonce: &n}
	if a.Location != nil {
		l := a.Location.Coarse()
		b.Location = &l
	}
	acc, err := s.store.SessionAccount(ctx, p.String(), now)
	switch {
	case err == nil:
		b.account = acc.ID
		b.Who = &acc.Account
	case err != ErrNoSession:
		s.fail(w, r, err)
		return
	}
	// Peer IDs are free: live listings are capped per account, and,
	// without one, per network.
	b.network = netKey(clientIP(r, s.cfg.TrustedProxies))
	b.capLive, b.liveSince = s.cfg.MaxLiveAnonymous, now.Add(-s.cfg.LiveTTL).UnixNano()
	if b.account != 0 {
		b.capLive = s.cfg.MaxLiveAccount
	}
	put, err := s.store.putBroadcast(ctx, b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !put.CountsOnly {
		// New counts alone may show up to listCacheAge late; anything else
		// shows at once.
		s.lists.invalidate()
	}
	res := api.ListingResponse{Listing: &b.Listing}
	wentLive := b.Live() && put.Fresh
	switch {
	case wentLive:
		e := Event{Kind: EventLive, Listing: &b.Listing}
		if b.Who != nil && !b.Private {
			s.addFollowers(ctx, &e, b.Who.Key())
		}
		if !b.Private {
			s.raise(ctx, e)
			if s.cfg.OnLive != nil {
				s.cfg.OnLive(e)
			}
		}
		if a.Tweet && b.Who != nil && b.Who.Provider == "twitter" && !b.Private && !b.tweeted {
			if tid, err := s.tweetLive(ctx, b); err != nil {
				s.log.Warn("tweeting a live broadcast", "broadcast", id, "err", err)
			} else {
				res.Tweeted = tid
			}
		}
	case !b.Private && !b.Live() && (put.Fresh || put.WasLive):
		s.raise(ctx, Event{Kind: EventEnded, Listing: &b.Listing})
	case !b.Private:
		s.raise(ctx, Event{Kind: EventUpdate, Listing: &b.Listing, countsOnly: put.CountsOnly})
	}
	writeJSON(w, http.StatusOK, res)
}

// signedRecord keeps what the broadcaster signed, for audit: the
// signature headers and the body.
func signedRecord(r *http.Request, body []byte) []byte {
	h := r.Header
	rec := fmt.Appendf(nil, "%s %s\n%s\n%s\n%s\n%s\n", r.Method, r.URL.RequestURI(), h.Get(api.HeaderPeer), h.Get(api.HeaderTime), h.Get(api.HeaderNonce), h.Get(api.HeaderSignature))
	return append(rec, body...)
}

func (s *Server) addFollowers(ctx context.Context, e *Event, key string) {
	ids, err := s.store.followers(ctx, key)
	if err != nil {
		s.log.Warn("followers", "account", key, "err", err)
		return
	}
	e.followerIDs = make(map[int64]bool, len(ids))
	for _, id := range ids {
		e.followerIDs[id] = true
	}
	if len(ids) == 0 {
		return
	}
	// The keys for the pubsub side: one query for all.
	rows, err := s.store.r.QueryContext(ctx, `SELECT a.provider || ':' || a.subject FROM follows f JOIN accounts a ON a.id = f.follower WHERE f.followee = ?`, key)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if rows.Scan(&k) == nil {
			e.Followers = append(e.Followers, k)
		}
	}
}

// tweetLive posts the broadcast's link as its broadcaster.
func (s *Server) tweetLive(ctx context.Context, b *entry) (string, error) {
	if s.cfg.Twitter.ClientID == "" {
		return "", fmt.Errorf("%w: Twitter", ErrUnavailable)
	}
	tok, err := s.providerTokens(ctx, b.account)
	if err != nil {
		return "", err
	}
	if !hasScope(tok.Scopes, "tweet.write") {
		return "", fmt.Errorf("%w: the account did not allow posting", ErrForbidden)
	}
	text := "Live now on Peerscope"
	if b.Title != "" {
		text = b.Title + " — live now on Peerscope"
	}
	if s.cfg.PublicURL != "" {
		text += ": " + s.cfg.PublicURL + "/watch/" + b.ID
	}
	id, err := s.cfg.Twitter.tweet(ctx, s.cfg.HTTPClient, tok.Access, text)
	if err != nil {
		return "", err
	}
	if err := s.store.markTweeted(ctx, b.ID); err != nil {
		return id, err
	}
	return id, nil
}

// providerTokens returns an account's tokens at X, refreshed first if the
// access token has expired (or is about to) and a refresh token is held.
func (s *Server) providerTokens(ctx context.Context, account int64) (ProviderTokens, error) {
	tok, err := s.store.Tokens(ctx, account)
	if err != nil {
		return tok, err
	}
	now := s.cfg.Now()
	if tok.Expires.IsZero() || now.Add(time.Minute).Before(tok.Expires) || tok.Refresh == "" {
		return tok, nil
	}
	t, err := s.cfg.Twitter.refresh(ctx, s.cfg.HTTPClient, tok.Refresh)
	if err != nil {
		return tok, fmt.Errorf("refreshing the X token: %w", err)
	}
	tok.Access = t.AccessToken
	if t.RefreshToken != "" {
		tok.Refresh = t.RefreshToken
	}
	if t.Scope != "" {
		tok.Scopes = t.Scope
	}
	tok.Expires = time.Time{}
	if t.ExpiresIn > 0 {
		tok.Expires = now.Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	return tok, s.store.SetTokens(ctx, account, tok)
}

func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	id, _, body, n, ok := s.byBroadcaster(w, r, "publish the replay of")
	if !ok {
		return
	}
	if err := s.store.saveNonce(r.Context(), n); err != nil {
		s.fail(w, r, err)
		return
	}
	var e api.ReplayEntry
	if err := decodeStrict(r, body, &e); err != nil {
		s.fail(w, r, err)
		return
	}
	if e.Manifest == "" || len(e.Manifest) > 512 || !identity.ValidText(e.Manifest) {
		s.fail(w, r, fmt.Errorf("%w: manifest reference of 1 to 512 characters", ErrBadRequest))
		return
	}
	b, err := s.store.entry(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if b.Live() {
		s.fail(w, r, fmt.Errorf("%w: the broadcast has not ended", ErrStale))
		return
	}
	expires := b.Ended.Add(s.cfg.ReplayTTL)
	if !s.cfg.Now().Before(expires) {
		s.fail(w, r, fmt.Errorf("%w: the replay expired at %s", ErrStale, expires.UTC().Format(time.RFC3339)))
		return
	}
	if err := s.store.setReplay(r.Context(), id, e.Manifest, expires); err != nil {
		s.fail(w, r, err)
		return
	}
	s.lists.invalidate()
	b.Replay, b.ReplayExpires = e.Manifest, expires
	if !b.Private {
		s.raise(r.Context(), Event{Kind: EventReplay, Listing: &b.Listing})
	}
	writeJSON(w, http.StatusOK, api.ListingResponse{Listing: &b.Listing})
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var query api.Query
	switch q.Get("state") {
	case "", "live":
	case "replay":
		query.Replays = true
	default:
		s.fail(w, r, fmt.Errorf("%w: state is live or replay", ErrBadRequest))
		return
	}
	query.Text = strings.TrimSpace(q.Get("q"))
	if utf8.RuneCountInString(query.Text) > maxQueryText || !identity.ValidText(query.Text) {
		s.fail(w, r, fmt.Errorf("%w: search text of at most %d characters", ErrBadRequest, maxQueryText))
		return
	}
	var err error
	if query.Limit, err = atoiDefault(q.Get("limit"), 50, 1, 200); err != nil {
		s.fail(w, r, err)
		return
	}
	follower, err := s.followedBy(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now()
	if follower != 0 {
		// One account's view: not shared through the cache.
		list, err := s.store.listBroadcasts(r.Context(), query, follower, now, s.cfg.LiveTTL)
		if err == nil {
			list, err = s.mergeFederated(r.Context(), query, follower, now, list)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, api.ListResponse{Listings: list})
		return
	}
	key := fmt.Sprintf("%t\x00%d\x00%s", query.Replays, query.Limit, query.Text)
	body, err := s.lists.get(key, now, func() ([]byte, error) {
		// Others may wait on this answer: the first asker leaving must
		// not cancel it.
		ctx := context.WithoutCancel(r.Context())
		list, err := s.store.listBroadcasts(ctx, query, 0, now, s.cfg.LiveTTL)
		if err == nil {
			list, err = s.mergeFederated(ctx, query, 0, now, list)
		}
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(api.ListResponse{Listings: list})
		return append(b, '\n'), err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// followedBy reads a list's followed parameter: absent, 0; "1", the ID of
// the account that signed the request (whom it follows is its own to
// read: an unsigned request, or a peer not signed in, is refused as any
// signed call is). Any other value is a bad request.
func (s *Server) followedBy(w http.ResponseWriter, r *http.Request) (int64, error) {
	switch r.URL.Query().Get("followed") {
	case "":
		return 0, nil
	case "1":
	default:
		return 0, fmt.Errorf("%w: followed is 1 (the signed-in account's follows) or absent", ErrBadRequest)
	}
	_, acc, body, err := s.session(w, r)
	if err == nil {
		err = noBody(body, "GET")
	}
	if err != nil {
		return 0, err
	}
	return acc.ID, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := api.BroadcasterOf(id); err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.store.entry(r.Context(), id)
	if err == nil && b.Private {
		err = ErrNotFound // private entries are not shown (their ACLs come later)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, &b.Listing)
}

// handleEvents is the public stream: every public broadcast's changes.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	s.stream(w, r, 0)
}

// handleFeed is a signed-in peer's stream: go-live events of those its
// account follows.
func (s *Server) handleFeed(w http.ResponseWriter, r *http.Request) {
	_, acc, _, err := s.session(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.stream(w, r, acc.ID)
}

// --- follows ---

func (s *Server) handleFollowing(w http.ResponseWriter, r *http.Request) {
	_, acc, _, err := s.session(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Following(r.Context(), acc.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.FollowsResponse{Account: acc.Key(), Following: list})
}

// MaxFollows bounds how many accounts one account may follow.
const MaxFollows = 5000

func (s *Server) handleFollow(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("account")
	if err := api.CheckAccountKey(key); err != nil {
		s.fail(w, r, err)
		return
	}
	_, acc, body, err := s.session(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: PUT a follow without a body", ErrBadRequest)
	}
	if err == nil && key == acc.Key() {
		err = fmt.Errorf("%w: one does not follow oneself", ErrBadRequest)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Following(r.Context(), acc.ID)
	if err == nil && len(list) >= MaxFollows {
		err = fmt.Errorf("%w: %d follows is the limit", ErrRateLimited, MaxFollows)
	}
	if err == nil {
		err = s.store.follow(r.Context(), acc.ID, key, s.cfg.Now())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"following": key})
}

func (s *Server) handleUnfollow(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("account")
	if err := api.CheckAccountKey(key); err != nil {
		s.fail(w, r, err)
		return
	}
	_, acc, body, err := s.session(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: DELETE without a body", ErrBadRequest)
	}
	if err == nil {
		err = s.store.unfollow(r.Context(), acc.ID, key)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"unfollowed": key})
}

// maxImport bounds a Twitter following import.
const maxImport = 5000

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	_, acc, _, err := s.session(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.importFollowing(r.Context(), acc)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.SuggestionsResponse{Suggestions: list})
}

// importFollowing fetches who the account follows on Twitter and stores
// them as suggestions.
func (s *Server) importFollowing(ctx context.Context, acc Account) ([]api.Suggestion, error) {
	if acc.Provider != "twitter" || s.cfg.Twitter.ClientID == "" {
		return nil, fmt.Errorf("%w: importing follows needs a Twitter sign-in", ErrBadRequest)
	}
	tok, err := s.providerTokens(ctx, acc.ID)
	if err != nil {
		return nil, err
	}
	if !hasScope(tok.Scopes, "follows.read") {
		return nil, fmt.Errorf("%w: sign in again allowing the follows import", ErrForbidden)
	}
	users, err := s.cfg.Twitter.following(ctx, s.cfg.HTTPClient, tok.Access, acc.Subject, maxImport)
	if err != nil {
		return nil, err
	}
	var list []api.Suggestion
	for _, u := range users {
		a := api.Account{Provider: "twitter", Subject: u.ID, Handle: "@" + u.Username, Name: u.Name, Avatar: u.ProfileImageURL}
		if sanitizeAccount(&a) != nil {
			continue
		}
		list = append(list, api.Suggestion{Account: a.Key(), Handle: a.Handle, Name: a.Name, Avatar: a.Avatar})
	}
	if err := s.store.putSuggestions(ctx, acc.ID, list, s.cfg.Now()); err != nil {
		return nil, err
	}
	return s.store.Suggestions(ctx, acc.ID)
}

func (s *Server) handleSuggestions(w http.ResponseWriter, r *http.Request) {
	_, acc, _, err := s.session(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Suggestions(r.Context(), acc.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.SuggestionsResponse{Suggestions: list})
}
