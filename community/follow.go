package community

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// What the player page asks of the community side: who a broadcast's
// broadcaster is (from the bootstrap's listing of it) and, for the node's
// own account, following them.

// listingRefresh is how often, at most, the listing behind Broadcaster is
// read again; unlistedRefresh is the same for an answer of "not listed",
// which is often only early: a player opened as the broadcast starts asks
// before the broadcaster's listing lands, and must not hide who broadcasts
// for the next 30 s. maxListings bounds how many broadcasts are remembered.
const (
	listingRefresh  = 30 * time.Second
	unlistedRefresh = 3 * time.Second
	maxListings     = 256
)

// listed is what the first bootstrap last said of a broadcast.
type listed struct {
	who    *api.Account // nil: anonymous, or not listed
	listed bool         // the bootstrap lists it (its web link plays it)
	at     time.Time    // when it was last read (zero: never)
	busy   bool         // a read is under way
}

// Broadcaster returns who broadcasts id as the first bootstrap's listing
// names them (nil: anonymous, or not listed) and whether it is listed
// there. It never waits: it answers what was last read and, when that is
// older than 30 s (3 s for "not listed"), reads the listing again in the
// background, so a page that asks every few seconds learns it within one
// more ask.
func (c *Community) Broadcaster(id string) (who *api.Account, isListed bool) {
	if c.client == nil {
		return nil, false
	}
	now := c.clock.Now()
	c.mu.Lock()
	if c.listings == nil || (c.listings[id] == nil && len(c.listings) >= maxListings) {
		c.listings = map[string]*listed{}
	}
	e := c.listings[id]
	if e == nil {
		e = &listed{}
		c.listings[id] = e
	}
	who, isListed = e.who, e.listed
	refresh := listingRefresh
	if !e.listed {
		refresh = unlistedRefresh
	}
	stale := !e.busy && (e.at.IsZero() || now.Sub(e.at) >= refresh)
	if stale {
		e.busy = true
	}
	c.mu.Unlock()
	if stale {
		c.goBackground(func() {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			defer cancel()
			l, err := c.client.Broadcast(ctx, id)
			c.mu.Lock()
			defer c.mu.Unlock()
			e.busy = false
			var ae *api.APIError
			switch {
			case err == nil:
				e.who, e.listed, e.at = l.Who, true, c.clock.Now()
			case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
				e.who, e.listed, e.at = nil, false, c.clock.Now()
			default:
				c.log.Debug("listing", "broadcast", short(id), "err", err) // asked again at the next call
			}
		})
	}
	return who, isListed
}

// Following returns this node's account key and the account keys it
// follows (ErrNotSignedIn when it is not signed in).
func (c *Community) Following(ctx context.Context) (account string, following []string, err error) {
	if c.client == nil {
		return "", nil, ErrNoBootstrap
	}
	res, err := c.client.Follows(ctx)
	if err != nil {
		return "", nil, signInNeeded(err)
	}
	list := res.Following
	c.mu.Lock()
	c.follows = map[string]bool{}
	for _, k := range list {
		c.follows[k] = true
	}
	c.followsAt = c.clock.Now()
	c.mu.Unlock()
	return res.Account, list, nil
}

// Follow has this node's account follow (on) or unfollow the account key
// ("twitter:1234") at the first bootstrap (ErrNotSignedIn when the node is
// not signed in); the go-live notices follow the change at once.
func (c *Community) Follow(ctx context.Context, key string, on bool) error {
	if c.client == nil {
		return ErrNoBootstrap
	}
	var err error
	if on {
		err = c.client.Follow(ctx, key)
	} else {
		err = c.client.Unfollow(ctx, key)
	}
	if err != nil {
		return signInNeeded(err)
	}
	c.mu.Lock()
	c.followsAt = time.Time{} // read the list again at the next notice
	c.mu.Unlock()
	return nil
}

// serveFollows answers GET /directory/api/node/follows: whether the node
// is signed in, as which account ("provider:account": the page offers no
// Follow of oneself), and whom it follows.
func (c *Community) serveFollows(w http.ResponseWriter, r *http.Request) {
	if c.client == nil {
		noBootstrap(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	account, list, err := c.Following(ctx)
	switch {
	case errors.Is(err, ErrNotSignedIn):
		writeJSON(w, map[string]any{"signed_in": false, "following": []string{}})
		return
	case err != nil:
		failAPI(w, err)
		return
	}
	if list == nil {
		list = []string{}
	}
	writeJSON(w, map[string]any{"signed_in": true, "account": account, "following": list})
}

// serveFollow answers POST /directory/api/node/follow {"account":
// "provider:account", "follow": true|false}: the node's account follows
// or unfollows it. Not signed in is a 403 that says where to sign in.
func (c *Community) serveFollow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Account string `json:"account"`
		Follow  bool   `json:"follow"`
	}
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	if err := api.CheckAccountKey(req.Account); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	err := c.Follow(ctx, req.Account, req.Follow)
	switch {
	case errors.Is(err, ErrNotSignedIn):
		writeError(w, http.StatusForbidden, "sign in on the directory page (/directory/) to follow")
	case err != nil:
		failAPI(w, err)
	default:
		writeJSON(w, map[string]any{"account": req.Account, "following": req.Follow})
	}
}

// maxSearch bounds a search the page passes on (the bootstrap's bound).
const maxSearch = 100

// serveFollowing answers GET /directory/api/node/following[?q=TEXT]: the
// node's account, whom it follows, and what those accounts have live now
// and coming up, as the bootstrap selects them (followed=1, signed with
// the node's key), so that none is lost behind the 200 entries of the
// public lists however many others are listed. What a bootstrap older than
// followed=1 answers (everyone's) is kept to the followed here too. Not
// signed in: {"signed_in": false}.
func (c *Community) serveFollowing(w http.ResponseWriter, r *http.Request) {
	if c.client == nil {
		noBootstrap(w, r)
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(q) > maxSearch || !identity.ValidText(q) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("a search is at most %d characters of text", maxSearch))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	account, keys, err := c.Following(ctx)
	switch {
	case errors.Is(err, ErrNotSignedIn):
		writeJSON(w, map[string]any{"signed_in": false, "following": []string{}, "live": []any{}, "upcoming": []any{}})
		return
	case err != nil:
		failAPI(w, err)
		return
	}
	follows := map[string]bool{}
	for _, k := range keys {
		follows[k] = true
	}
	followed := func(who *api.Account) bool { return who != nil && follows[who.Key()] }
	live, err := c.client.List(ctx, api.Query{Followed: true, Text: q, Limit: 200})
	if err != nil {
		failAPI(w, signInNeeded(err))
		return
	}
	next, err := c.client.Schedules(ctx, api.ScheduleQuery{Followed: true, Text: q})
	if err != nil {
		failAPI(w, signInNeeded(err))
		return
	}
	live = slices.DeleteFunc(live, func(l *api.Listing) bool { return !followed(l.Who) })
	next = slices.DeleteFunc(next, func(s api.Scheduled) bool { return !followed(s.Who) })
	if keys == nil {
		keys = []string{}
	}
	if next == nil {
		next = []api.Scheduled{}
	}
	writeJSON(w, map[string]any{"signed_in": true, "account": account, "following": keys, "live": live, "upcoming": next})
}
