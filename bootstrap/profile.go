package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// Profiles (issue 15): who an account is, as the directory page shows it.
//
//	GET /api/v1/profiles/{who}   who: an account key, an @handle, or an anonymous broadcaster's peer ID
//
// An account's profile counts its followers and whom it follows and lists
// its public broadcasts: live, upcoming, and replays not yet expired. An
// anonymous broadcaster (no account, a peer ID) has only its broadcasts.
// Nothing is written: an unknown name is a 404 that says so.

// profileStore is what the server needs of a store for profiles; Store
// implements it over its database.
type profileStore interface {
	AccountByKey(ctx context.Context, key string) (Account, error)
	accountsByHandle(ctx context.Context, handle string) ([]Account, error)
	followCounts(ctx context.Context, key string, account int64) (followers, following int, err error)
	broadcastsOf(ctx context.Context, of broadcaster, replays bool, now time.Time, liveTTL time.Duration, limit int) ([]*api.Listing, error)
}

var _ profileStore = (*Store)(nil)

// broadcaster names whose broadcasts to list: an account's (account != 0),
// or an anonymous peer's.
type broadcaster struct {
	account int64
	peer    string
}

// Bounds of a profile's lists.
const (
	profileLive     = 20
	profileReplays  = 50
	profileUpcoming = 50
)

func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request) {
	p, err := s.profile(r.Context(), r.PathValue("who"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) profile(ctx context.Context, who string) (*api.Profile, error) {
	if who == "" || utf8.RuneCountInString(who) > api.MaxProfileName || !identity.ValidText(who) {
		return nil, fmt.Errorf("%w: a profile is named by an account key (twitter:1234), an @handle or a peer ID, of at most %d characters",
			ErrBadRequest, api.MaxProfileName)
	}
	var acc Account
	switch {
	case strings.HasPrefix(who, "@"):
		list, err := s.profiles.accountsByHandle(ctx, who)
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%w: nobody signed in here as %s", ErrNotFound, who)
		}
		acc = list[0] // the first to sign in with it
	case strings.Contains(who, ":"):
		if err := api.CheckAccountKey(who); err != nil {
			return nil, err
		}
		a, err := s.profiles.AccountByKey(ctx, who)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: no account %s has signed in here", ErrNotFound, who)
		}
		if err != nil {
			return nil, err
		}
		acc = a
	default:
		id, err := peer.Decode(who)
		if err != nil || id.String() != who {
			return nil, fmt.Errorf("%w: %q is not an account key (twitter:1234), an @handle or a peer ID", ErrBadRequest, clip(who, 80))
		}
		return s.anonymousProfile(ctx, who)
	}
	now := s.cfg.Now()
	p := &api.Profile{Key: acc.Key(), Who: &acc.Account, Source: sourceOf(acc.Provider)}
	var err error
	if p.Followers, p.Following, err = s.profiles.followCounts(ctx, p.Key, acc.ID); err != nil {
		return nil, err
	}
	of := broadcaster{account: acc.ID}
	if p.Live, err = s.profiles.broadcastsOf(ctx, of, false, now, s.cfg.LiveTTL, profileLive); err != nil {
		return nil, err
	}
	if p.Replays, err = s.profiles.broadcastsOf(ctx, of, true, now, s.cfg.LiveTTL, profileReplays); err != nil {
		return nil, err
	}
	if p.Upcoming, err = s.schedules.upcoming(ctx, upcomingFilter{account: acc.ID}, now.Add(-scheduleGrace), profileUpcoming); err != nil {
		return nil, err
	}
	return p, nil
}

// anonymousProfile is a peer's broadcasts made without an account; a peer
// the directory has nothing of is unknown.
func (s *Server) anonymousProfile(ctx context.Context, id string) (*api.Profile, error) {
	now := s.cfg.Now()
	p := &api.Profile{Key: id, Source: api.SourceAnonymous, Upcoming: []api.Scheduled{}}
	of := broadcaster{peer: id}
	var err error
	if p.Live, err = s.profiles.broadcastsOf(ctx, of, false, now, s.cfg.LiveTTL, profileLive); err != nil {
		return nil, err
	}
	if p.Replays, err = s.profiles.broadcastsOf(ctx, of, true, now, s.cfg.LiveTTL, profileReplays); err != nil {
		return nil, err
	}
	if len(p.Live) == 0 && len(p.Replays) == 0 {
		return nil, fmt.Errorf("%w: the directory lists nothing of broadcaster %s now", ErrNotFound, clip(id, 80))
	}
	return p, nil
}

// sourceOf names where an account's identity comes from.
func sourceOf(provider string) string {
	switch provider {
	case "twitter":
		return api.SourceTwitter
	case "phone":
		return api.SourcePhone
	}
	return provider
}
