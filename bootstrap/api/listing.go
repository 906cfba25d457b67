package api

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/link"
)

// Listing is one entry of the directory: a broadcast as the bootstrap
// lists it (GET /api/v1/broadcasts, …/{id}, the event streams, live
// notices).
type Listing struct {
	ID          string `json:"id"`
	Broadcaster string `json:"broadcaster"` // peer ID
	// Who is the broadcaster's signed-in identity, if it has one.
	Who           *Account  `json:"who,omitempty"`
	Title         string    `json:"title"`
	Link          string    `json:"link"`
	Private       bool      `json:"private"`
	Started       time.Time `json:"started"`
	Ended         time.Time `json:"ended,omitzero"`
	Viewers       int       `json:"viewers"`
	ReplayViewers int       `json:"replay_viewers"`
	// ReplayViewersIdentified is how many of the replay's views were
	// signed-in accounts' (each once); the rest are anonymous.
	ReplayViewersIdentified int       `json:"replay_viewers_identified"`
	Version                 uint64    `json:"version"`
	Updated                 time.Time `json:"updated"`
	// Replay is the replay's manifest reference (set by the replay
	// endpoint once the broadcaster published one); ReplayExpires is when
	// the directory stops listing it, 24 h after the end.
	Replay        string    `json:"replay,omitempty"`
	ReplayExpires time.Time `json:"replay_expires,omitzero"`
	// Location is where the broadcaster said the broadcast is, rounded to
	// 0.1° (absent when they did not say).
	Location *Location `json:"location,omitempty"`
	// Thumbnail, when the broadcaster's node sent a still, is its tag
	// (ThumbnailTag): the image is at ./api/v1/broadcasts/{id}/thumbnail.
	// Absent in old listings and from old bootstraps.
	Thumbnail string `json:"thumbnail,omitempty"`
	// Origin, on a listing read from another community (federation),
	// says which; absent on the bootstrap's own.
	Origin *Origin `json:"origin,omitempty"`
}

// Live reports whether the broadcast has not ended.
func (l *Listing) Live() bool { return l.Ended.IsZero() }

// ListingUpdate is what a broadcaster's node PUTs to
// /api/v1/broadcasts/{id}, signed with the broadcaster's libp2p key (the
// key the broadcast ID names). Every change (title, viewer counts, the
// end) is a new version; the directory keeps the newest.
type ListingUpdate struct {
	Title   string    `json:"title"`
	Link    string    `json:"link"` // peerscope://<id>?peer=…
	Private bool      `json:"private"`
	Started time.Time `json:"started"`
	// Ended is set once, when the broadcast ends.
	Ended         time.Time `json:"ended,omitzero"`
	Viewers       int       `json:"viewers"`
	ReplayViewers int       `json:"replay_viewers"`
	// ReplayViewersIdentified: of ReplayViewers, the views of distinct
	// signed-in accounts.
	ReplayViewersIdentified int `json:"replay_viewers_identified,omitempty"`
	// Version grows with every change (the broadcaster's clock in Unix
	// ns, say).
	Version uint64 `json:"version"`
	// Tweet opts in to posting the link on the broadcaster's Twitter
	// account when it goes live (it must have signed in with ScopeTweet).
	Tweet bool `json:"tweet,omitempty"`
	// Location, optional, puts the broadcast on the directory's map; the
	// directory rounds it to 0.1°. A bootstrap older than the field
	// refuses an update that has it (its decoder takes no unknown field):
	// the community side then lists the broadcast without it.
	Location *Location `json:"location,omitempty"`
}

// Limits of a listing.
const (
	MaxTitle   = 200  // characters
	MaxLink    = 4096 // bytes
	MaxViewers = 100_000_000
	maxIDLen   = 128
)

// Check refuses (with ErrBadRequest) an update of broadcast id that breaks
// a limit, at now on a clock that may be skew ahead of the sender's.
func (u *ListingUpdate) Check(id string, now time.Time, skew time.Duration) error {
	switch {
	case utf8.RuneCountInString(u.Title) > MaxTitle || !identity.ValidText(u.Title):
		return fmt.Errorf("%w: title: at most %d characters on one line", ErrBadRequest, MaxTitle)
	case len(u.Link) > MaxLink || !identity.ValidText(u.Link):
		return fmt.Errorf("%w: link: at most %d bytes on one line", ErrBadRequest, MaxLink)
	case u.Started.IsZero() || u.Started.After(now.Add(skew)):
		return fmt.Errorf("%w: started: missing or in the future", ErrBadRequest)
	case !u.Ended.IsZero() && (u.Ended.Before(u.Started) || u.Ended.After(now.Add(skew))):
		return fmt.Errorf("%w: ended: before the start or in the future", ErrBadRequest)
	case u.Viewers < 0 || u.Viewers > MaxViewers || u.ReplayViewers < 0 || u.ReplayViewers > MaxViewers ||
		u.ReplayViewersIdentified < 0 || u.ReplayViewersIdentified > u.ReplayViewers:
		return fmt.Errorf("%w: viewer counts out of range", ErrBadRequest)
	case u.Version == 0 || u.Version > 1<<62:
		return fmt.Errorf("%w: version must be from 1 to 2^62", ErrBadRequest)
	}
	if u.Location != nil {
		if err := u.Location.Check(); err != nil {
			return err
		}
	}
	return checkLink(u.Link, id)
}

// checkLink holds a listing's link to what a node's own parser takes
// (link.Parse): the broadcast's, with peers to join through, written as
// Link.String writes it (so what the directory shows, and the command its
// page quotes, is exactly what a node would parse).
func checkLink(s, id string) error {
	l, err := link.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%w: link: %w", ErrBadRequest, err)
	case l.Broadcast != id:
		return fmt.Errorf("%w: link: names broadcast %s, not %s", ErrBadRequest, clip(l.Broadcast, 80), clip(id, 80))
	case l.String() != s:
		return fmt.Errorf("%w: link: not in its canonical form %q", ErrBadRequest, clip(l.String(), 120))
	}
	return nil
}

// ListingResponse answers a ListingUpdate and a ReplayEntry.
type ListingResponse struct {
	Listing *Listing `json:"broadcast"`
	Tweeted string   `json:"tweeted,omitempty"` // the tweet's ID
}

// ReplayEntry is what the replay side PUTs to
// /api/v1/broadcasts/{id}/replay (signed by the broadcaster) once the
// broadcast has ended and its manifest is published: the directory lists
// the replay until 24 h after the end.
type ReplayEntry struct {
	// Manifest references the signed replay manifest (its CID, say).
	Manifest string `json:"manifest"`
}

// ListResponse is a page of the directory.
type ListResponse struct {
	Listings []*Listing `json:"broadcasts"`
}

// Query selects directory entries (GET /api/v1/broadcasts?state=&q=&limit=&followed=).
type Query struct {
	// Replays lists ended broadcasts with a replay not yet expired;
	// otherwise live ones (announced or updated recently).
	Replays bool
	// Text, when set, keeps entries whose title, handle or name contain
	// it (case-insensitive for ASCII).
	Text  string
	Limit int
	// Followed keeps the entries of accounts the signing node's account
	// follows (followed=1): a signed request, the follow graph being no
	// one else's to read. The bootstrap filters, so a followed broadcast
	// is found however many others are listed before it.
	Followed bool
}

// BroadcasterOf returns the broadcaster named by a broadcast ID,
// "<peer ID>.<nonce>", or ErrBadRequest.
func BroadcasterOf(id string) (peer.ID, error) {
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

// CheckAccountKey refuses (with ErrBadRequest) what is not an account key,
// "provider:account".
func CheckAccountKey(k string) error {
	provider, subject, ok := strings.Cut(k, ":")
	if !ok || !identity.ValidProvider(provider) || subject == "" || len(subject) > identity.MaxAccountLen || !identity.ValidText(subject) {
		return fmt.Errorf("%w: %q is not an account key (provider:account)", ErrBadRequest, clip(k, 80))
	}
	return nil
}

// clip shortens what a client sent before an error message quotes it.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
