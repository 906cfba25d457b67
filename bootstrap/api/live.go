package api

import (
	"encoding/json"
	"fmt"
)

// Go-live notices over libp2p: the bootstrap publishes each public
// broadcast that goes live on LiveTopic (GossipSub, signed by the
// bootstrap's host key); a node subscribed through its bootstrap
// connection takes notices only from its bootstraps' peer IDs and keeps
// those of the accounts it follows. The message carries the broadcast, its
// link and its broadcaster's identity, not the followers: the follow graph
// stays on the bootstrap.

// LiveTopic is the GossipSub topic of go-live notices.
const LiveTopic = "/peerscope/live/1"

// MaxLiveNotice bounds a notice on LiveTopic.
const MaxLiveNotice = 8 << 10

// LiveNotice is a LiveTopic message (JSON).
type LiveNotice struct {
	Listing *Listing `json:"broadcast"`
}

// EncodeLiveNotice is the LiveTopic message for a listing that went live;
// an error if it would exceed MaxLiveNotice.
func EncodeLiveNotice(l *Listing) ([]byte, error) {
	b, err := json.Marshal(LiveNotice{Listing: l})
	if err == nil && len(b) > MaxLiveNotice {
		err = fmt.Errorf("%w: live notice of %d bytes", ErrBadRequest, len(b))
	}
	return b, err
}

// DecodeLiveNotice parses and checks a LiveTopic message: its listing's
// ID names its broadcaster, and its fields are within a listing's limits.
func DecodeLiveNotice(b []byte) (*Listing, error) {
	if len(b) > MaxLiveNotice {
		return nil, fmt.Errorf("%w: live notice of %d bytes", ErrBadRequest, len(b))
	}
	var n LiveNotice
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("%w: live notice: %w", ErrBadRequest, err)
	}
	l := n.Listing
	if l == nil {
		return nil, fmt.Errorf("%w: live notice without a broadcast", ErrBadRequest)
	}
	owner, err := BroadcasterOf(l.ID)
	if err != nil {
		return nil, err
	}
	if l.Broadcaster != owner.String() {
		return nil, fmt.Errorf("%w: live notice: broadcaster %q does not match the ID", ErrBadRequest, clip(l.Broadcaster, 80))
	}
	u := ListingUpdate{Title: l.Title, Link: l.Link, Started: l.Started, Viewers: l.Viewers, ReplayViewers: l.ReplayViewers, Version: max(l.Version, 1), Location: l.Location}
	if err := u.Check(l.ID, l.Started, 0); err != nil {
		return nil, err
	}
	if l.Who != nil {
		if err := CheckAccountKey(l.Who.Key()); err != nil {
			return nil, err
		}
	}
	return l, nil
}
