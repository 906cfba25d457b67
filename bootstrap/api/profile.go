package api

import (
	"context"
	"net/http"
	"net/url"
)

// Profile sources: where a profile's identity comes from, as the page
// shows it (a phone account shows its masked handle, never the number).
const (
	SourceTwitter   = "twitter"
	SourcePhone     = "phone"
	SourceAnonymous = "anonymous"
)

// MaxProfileName bounds what names a profile in GET /api/v1/profiles/{who}:
// an account key ("twitter:1234"), a handle ("@alice") or, for an
// anonymous broadcaster, a peer ID.
const MaxProfileName = 200

// Profile answers GET /api/v1/profiles/{who}: who an account (or an
// anonymous broadcaster) is, how many follow it and whom it follows, and
// its public broadcasts: live now, upcoming, and the replays not yet
// expired (those of the last 24 hours).
type Profile struct {
	// Key is what follows name the account by ("provider:account"), or,
	// anonymous, the broadcaster's peer ID (which nobody can follow).
	Key    string   `json:"key"`
	Who    *Account `json:"who,omitempty"` // nil: anonymous
	Source string   `json:"source"`        // SourceTwitter, SourcePhone or SourceAnonymous
	// Followers and Following count accounts (0 for anonymous).
	Followers int         `json:"followers"`
	Following int         `json:"following"`
	Live      []*Listing  `json:"live"`
	Replays   []*Listing  `json:"replays"`
	Upcoming  []Scheduled `json:"upcoming"`
}

// Profile fetches a profile by account key, @handle or peer ID (a 404
// APIError when the bootstrap knows nothing of it).
func (c *Client) Profile(ctx context.Context, who string) (*Profile, error) {
	var p Profile
	if err := c.do(ctx, http.MethodGet, "/api/v1/profiles/"+url.PathEscape(who), nil, false, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
