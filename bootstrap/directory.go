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

	"github.com/peerscope/peerscope/identity"
)

// Announcement is what a broadcaster's node PUTs to
// /api/v1/broadcasts/{id}, signed with the broadcaster's libp2p key (the
// key the broadcast ID names). Every change (title, viewer counts, the
// end) is a new version; the directory keeps the newest.
type Announcement struct {
	Title   string    `json:"title"`
	Link    string    `json:"link"` // peerscope://<id>?peer=…
	Private bool      `json:"private"`
	Started time.Time `json:"started"`
	// Ended is set once, when the broadcast ends.
	Ended         time.Time `json:"ended,omitzero"`
	Viewers       int       `json:"viewers"`
	ReplayViewers int       `json:"replay_viewers"`
	// Version grows with every change (the broadcaster's clock in Unix
	// ns, say).
	Version uint64 `json:"version"`
	// Tweet opts in to posting the link on the broadcaster's Twitter
	// account when it goes live (it must have signed in with ScopeTweet).
	Tweet bool `json:"tweet,omitempty"`
}

// Limits of an announcement.
const (
	MaxTitle     = 200  // characters
	MaxLink      = 4096 // bytes
	MaxViewers   = 100_000_000
	maxIDLen     = 128
	maxQueryText = 100
)

// AnnounceResponse answers an announcement.
type AnnounceResponse struct {
	Broadcast *Broadcast `json:"broadcast"`
	Tweeted   string     `json:"tweeted,omitempty"` // the tweet's ID
}

// broadcasterOf returns the broadcaster named by a broadcast ID,
// "<peer ID>.<nonce>".
func broadcasterOf(id string) (peer.ID, error) {
	dot := strings.LastIndexByte(id, '.')
	if len(id) > maxIDLen || dot < 1 || dot == len(id)-1 || strings.Trim(id[dot+1:], "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return "", fmt.Errorf("%w: broadcast ID %q is not <peer ID>.<nonce>", ErrBadRequest, clip(id, 80))
	}
	p, err := peer.Decode(id[:dot])
	if err != nil || p.String() != id[:dot] {
		return "", fmt.Errorf("%w: broadcast ID %q does not start with a peer ID", ErrBadRequest, clip(id, 80))
	}
	return p, nil
}

func (a *Announcement) check(id string, now time.Time, skew time.Duration) error {
	switch {
	case utf8.RuneCountInString(a.Title) > MaxTitle || !identity.ValidText(a.Title):
		return fmt.Errorf("%w: title: at most %d characters on one line", ErrBadRequest, MaxTitle)
	case len(a.Link) > MaxLink || !strings.HasPrefix(a.Link, "peerscope://"+id) ||
		(len(a.Link) > len("peerscope://"+id) && a.Link[len("peerscope://"+id)] != '?') || !identity.ValidText(a.Link):
		return fmt.Errorf("%w: link: must be peerscope://%s[?…], at most %d bytes", ErrBadRequest, clip(id, 80), MaxLink)
	case a.Started.IsZero() || a.Started.After(now.Add(skew)):
		return fmt.Errorf("%w: started: missing or in the future", ErrBadRequest)
	case !a.Ended.IsZero() && (a.Ended.Before(a.Started) || a.Ended.After(now.Add(skew))):
		return fmt.Errorf("%w: ended: before the start or in the future", ErrBadRequest)
	case a.Viewers < 0 || a.Viewers > MaxViewers || a.ReplayViewers < 0 || a.ReplayViewers > MaxViewers:
		return fmt.Errorf("%w: viewer counts out of range", ErrBadRequest)
	case a.Version == 0 || a.Version > 1<<62:
		return fmt.Errorf("%w: version must be from 1 to 2^62", ErrBadRequest)
	}
	return nil
}

// byBroadcaster checks that a request about the broadcast in the path is
// signed by its broadcaster (whose peer ID the broadcast ID names), and
// returns the ID, the signer and the body; on failure it has answered.
func (s *Server) byBroadcaster(w http.ResponseWriter, r *http.Request, what string) (id string, p peer.ID, body []byte, ok bool) {
	id = r.PathValue("id")
	owner, err := broadcasterOf(id)
	if err == nil {
		p, body, err = s.signed(w, r)
	}
	if err == nil && p != owner {
		err = fmt.Errorf("%w: only the broadcaster %s may %s %s", ErrForbidden, owner, what, clip(id, 80))
	}
	if err != nil {
		s.fail(w, r, err)
		return "", "", nil, false
	}
	return id, p, body, true
}

func (s *Server) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	id, p, body, ok := s.byBroadcaster(w, r, "announce")
	if !ok {
		return
	}
	var a Announcement
	if err := decodeStrict(r, body, &a); err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now()
	if err := a.check(id, now, s.cfg.ClockSkew); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	b := &Broadcast{ID: id, Broadcaster: p.String(), Title: a.Title, Link: a.Link, Private: a.Private,
		Started: a.Started, Ended: a.Ended, Viewers: a.Viewers, ReplayViewers: a.ReplayViewers,
		Version: a.Version, Updated: now, signed: signedRecord(r, body)}
	acc, err := s.store.SessionAccount(ctx, p.String(), now)
	switch {
	case err == nil:
		b.account = acc.ID
		b.Who = &acc
	case err != ErrNoSession:
		s.fail(w, r, err)
		return
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
	res := AnnounceResponse{Broadcast: b}
	wentLive := b.Live() && put.Fresh
	switch {
	case wentLive:
		e := Event{Kind: EventLive, Broadcast: b}
		if b.Who != nil && !b.Private {
			s.addFollowers(ctx, &e, b.Who.Key())
		}
		if !b.Private {
			s.hub.publish(e)
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
		s.hub.publish(Event{Kind: EventEnded, Broadcast: b})
	case !b.Private:
		s.hub.publish(Event{Kind: EventUpdate, Broadcast: b})
	}
	writeJSON(w, http.StatusOK, res)
}

// signedRecord keeps what the broadcaster signed, for audit: the
// signature headers and the body.
func signedRecord(r *http.Request, body []byte) []byte {
	h := r.Header
	rec := fmt.Appendf(nil, "%s %s\n%s\n%s\n%s\n%s\n", r.Method, r.URL.RequestURI(), h.Get(HeaderPeer), h.Get(HeaderTime), h.Get(HeaderNonce), h.Get(HeaderSignature))
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
func (s *Server) tweetLive(ctx context.Context, b *Broadcast) (string, error) {
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

// ReplayEntry is what the replay side PUTs to
// /api/v1/broadcasts/{id}/replay (signed by the broadcaster) once the
// broadcast has ended and its manifest is published: the directory lists
// the replay until ReplayTTL after the end.
type ReplayEntry struct {
	// Manifest references the signed replay manifest (its CID, say).
	Manifest string `json:"manifest"`
}

func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	id, _, body, ok := s.byBroadcaster(w, r, "publish the replay of")
	if !ok {
		return
	}
	var e ReplayEntry
	if err := decodeStrict(r, body, &e); err != nil {
		s.fail(w, r, err)
		return
	}
	if e.Manifest == "" || len(e.Manifest) > 512 || !identity.ValidText(e.Manifest) {
		s.fail(w, r, fmt.Errorf("%w: manifest reference of 1 to 512 characters", ErrBadRequest))
		return
	}
	b, err := s.store.Broadcast(r.Context(), id)
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
		s.hub.publish(Event{Kind: EventReplay, Broadcast: b})
	}
	writeJSON(w, http.StatusOK, AnnounceResponse{Broadcast: b})
}

// ListResponse is a page of the directory.
type ListResponse struct {
	Broadcasts []*Broadcast `json:"broadcasts"`
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var query Query
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
	now := s.cfg.Now()
	key := fmt.Sprintf("%t\x00%d\x00%s", query.Replays, query.Limit, query.Text)
	body, err := s.lists.get(key, now, func() ([]byte, error) {
		// Others may wait on this answer: the first asker leaving must
		// not cancel it.
		list, err := s.store.listBroadcasts(context.WithoutCancel(r.Context()), query, now, s.cfg.LiveTTL)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(ListResponse{Broadcasts: list})
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

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := broadcasterOf(id); err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.store.Broadcast(r.Context(), id)
	if err == nil && b.Private {
		err = ErrNotFound // private entries are not shown (their ACLs come later)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
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

// FollowsResponse lists the account keys an account follows.
type FollowsResponse struct {
	Account   string   `json:"account"`
	Following []string `json:"following"`
}

func validAccountKey(k string) error {
	provider, subject, ok := strings.Cut(k, ":")
	if !ok || !identity.ValidProvider(provider) || subject == "" || len(subject) > identity.MaxAccountLen || !identity.ValidText(subject) {
		return fmt.Errorf("%w: %q is not an account key (provider:account)", ErrBadRequest, clip(k, 80))
	}
	return nil
}

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
	writeJSON(w, http.StatusOK, FollowsResponse{Account: acc.Key(), Following: list})
}

// MaxFollows bounds how many accounts one account may follow.
const MaxFollows = 5000

func (s *Server) handleFollow(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("account")
	if err := validAccountKey(key); err != nil {
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
	if err := validAccountKey(key); err != nil {
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
	writeJSON(w, http.StatusOK, map[string]any{"suggestions": list})
}

// importFollowing fetches who the account follows on Twitter and stores
// them as suggestions.
func (s *Server) importFollowing(ctx context.Context, acc Account) ([]Suggestion, error) {
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
	var list []Suggestion
	for _, u := range users {
		a := Account{Provider: "twitter", Subject: u.ID, Handle: "@" + u.Username, Name: u.Name, Avatar: u.ProfileImageURL}
		if sanitizeAccount(&a) != nil {
			continue
		}
		list = append(list, Suggestion{Account: a.Key(), Handle: a.Handle, Name: a.Name, Avatar: a.Avatar})
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
	writeJSON(w, http.StatusOK, map[string]any{"suggestions": list})
}
