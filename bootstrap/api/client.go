package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/identity"
)

// Client is a node's side of the API: it signs its requests with the
// node's libp2p key, for the bootstrap it learns from /api/v1/info (whose
// keys it believes only as the bootstrap's identity key signed them).
type Client struct {
	// Base is the bootstrap's URL (http://127.0.0.1:8090), without a pin
	// (ParseBootstrapURL splits one off).
	Base string
	// Key is the node's libp2p private key; required for signed calls.
	Key crypto.PrivKey
	// Pin, when set, is the fingerprint the bootstrap must have: a
	// bootstrap answering with another is refused (ErrPin). It is how keys
	// fetched over plain HTTP are believed.
	Pin  string
	HTTP *http.Client     // default http.DefaultClient
	Now  func() time.Time // default time.Now

	mu      sync.Mutex
	id      string            // the bootstrap's fingerprint, once known
	idKey   ed25519.PublicKey // its identity key
	trustAt time.Time         // the newest trust statement believed
}

func (c *Client) do(ctx context.Context, method, path string, body any, sign bool, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if sign {
		if c.Key == nil {
			return ErrNoKey
		}
		id, err := c.ID(ctx)
		if err != nil {
			return err
		}
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		if err := SignRequest(req, b, c.Key, id, now()); err != nil {
			return err
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("bootstrap API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("bootstrap API: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorBody
		_ = json.Unmarshal(data, &e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("bootstrap API: %s %s: %w", method, path, err)
	}
	return nil
}

// Info fetches the bootstrap's ID, keys and addresses. The keys are those
// of its signed trust statement, checked against its identity key and the
// client's Pin: a bootstrap from before version 2 (no ID) is ErrOldBootstrap.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	if err := c.do(ctx, http.MethodGet, "/api/v1/info", nil, false, &i); err != nil {
		return i, err
	}
	if i.ID == "" || i.RequestVersion < RequestVersion {
		return i, fmt.Errorf("%s: %w", c.Base, ErrOldBootstrap)
	}
	if c.Pin != "" && i.ID != c.Pin {
		return i, fmt.Errorf("%w: %s answers as %s, pinned %s", ErrPin, c.Base, clip(i.ID, 40), c.Pin)
	}
	st, err := OpenTrust(i.Trust, i.IdentityKey, i.ID)
	if err != nil {
		return i, fmt.Errorf("%s: %w", c.Base, err)
	}
	if err := c.believe(i.ID, i.IdentityKey, st.Issued); err != nil {
		return i, err
	}
	i.Keys = st.Keys
	return i, nil
}

// believe records the bootstrap's identity and the time of the newest
// trust statement taken from it; a statement older than one already taken
// (a stale copy played back by someone on the path) is refused.
func (c *Client) believe(id string, key ed25519.PublicKey, issued time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != "" && c.id != id {
		return fmt.Errorf("%w: %s answered as %s, then as %s", ErrUntrusted, c.Base, c.id, clip(id, 40))
	}
	if issued.Before(c.trustAt) {
		return fmt.Errorf("%w: a trust statement of %s, older than one of %s already taken", ErrUntrusted,
			issued.UTC().Format(time.RFC3339), c.trustAt.UTC().Format(time.RFC3339))
	}
	c.id, c.idKey, c.trustAt = id, key, issued
	return nil
}

// ID returns the bootstrap's fingerprint, which the client's signed
// requests name; it reads /api/v1/info the first time.
func (c *Client) ID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.id
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	i, err := c.Info(ctx)
	return i.ID, err
}

// Trust fetches the bootstrap's current keys and revocations
// (GET /api/v1/trust), checked against its identity key.
func (c *Client) Trust(ctx context.Context) (identity.KeySet, error) {
	if _, err := c.ID(ctx); err != nil {
		return identity.KeySet{}, err
	}
	var s Signed
	if err := c.do(ctx, http.MethodGet, "/api/v1/trust", nil, false, &s); err != nil {
		return identity.KeySet{}, err
	}
	c.mu.Lock()
	id, key := c.id, c.idKey
	c.mu.Unlock()
	st, err := OpenTrust(&s, key, id)
	if err == nil {
		err = c.believe(id, key, st.Issued)
	}
	return st.Keys, err
}

// FetchInfos fetches the Info of several bootstraps (URLs as
// ParseBootstrapURL reads them), in order; the first that fails ends it.
func FetchInfos(ctx context.Context, hc *http.Client, urls ...string) ([]Info, error) {
	out := make([]Info, 0, len(urls))
	for _, u := range urls {
		base, pin, err := ParseBootstrapURL(u)
		if err != nil {
			return nil, err
		}
		i, err := (&Client{Base: base, Pin: pin, HTTP: hc}).Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", u, err)
		}
		out = append(out, i)
	}
	return out, nil
}

// TrustSetOf is the trust set a node verifies attestations with: the
// union of the key sets of its bootstraps.
func TrustSetOf(infos []Info) (*identity.TrustSet, error) {
	sets := make([]identity.KeySet, 0, len(infos))
	for _, i := range infos {
		sets = append(sets, i.Keys)
	}
	return identity.NewTrustSet(sets...)
}

// TrustSetFrom fetches the key sets of several bootstraps and builds the
// trust set a node verifies attestations with.
func TrustSetFrom(ctx context.Context, hc *http.Client, urls ...string) (*identity.TrustSet, error) {
	infos, err := FetchInfos(ctx, hc, urls...)
	if err != nil {
		return nil, err
	}
	return TrustSetOf(infos)
}

// TwitterStart begins a sign-in with Twitter; the browser goes to the
// answer's AuthorizeURL, and comes back to returnURL (a loopback URL of
// the node's page; empty: the bootstrap shows the code) with the one-time
// code TwitterFinish redeems.
func (c *Client) TwitterStart(ctx context.Context, returnURL string, scopes ...string) (TwitterStartResponse, error) {
	var out TwitterStartResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/auth/twitter/start", TwitterStart{Scopes: scopes, Return: returnURL}, true, &out)
	return out, err
}

// TwitterFinish redeems a sign-in this node started with the one-time code
// the browser was given, and returns the node's attestation.
func (c *Client) TwitterFinish(ctx context.Context, code string) (AttestationResponse, error) {
	var out AttestationResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/auth/twitter/finish", TwitterFinish{Code: code}, true, &out)
	return out, err
}

// SignOut ends this node's session and revokes its attestations; with
// everywhere, every node's of the account.
func (c *Client) SignOut(ctx context.Context, everywhere bool) error {
	return c.do(ctx, http.MethodPost, "/api/v1/auth/signout", SignOut{Everywhere: everywhere}, true, nil)
}

// Sessions lists the nodes signed in as this node's account.
func (c *Client) Sessions(ctx context.Context) (SessionsResponse, error) {
	var out SessionsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/sessions", nil, true, &out)
	return out, err
}

// RevokeSession ends another node's session of this node's account and
// revokes its attestations.
func (c *Client) RevokeSession(ctx context.Context, peer string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/sessions/revoke", RevokeSession{Peer: peer}, true, nil)
}

// PhoneStart asks for a code to be sent to phone.
func (c *Client) PhoneStart(ctx context.Context, phone string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/auth/phone/start", PhoneStart{Phone: phone}, true, nil)
}

// PhoneVerify proves the code and returns the attestation.
func (c *Client) PhoneVerify(ctx context.Context, phone, code string) (AttestationResponse, error) {
	var out AttestationResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/auth/phone/verify", PhoneVerify{Phone: phone, Code: code}, true, &out)
	return out, err
}

// Attestation fetches the node's newest attestation.
func (c *Client) Attestation(ctx context.Context) (AttestationResponse, error) {
	var out AttestationResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/attestation", nil, true, &out)
	return out, err
}

// Announce puts a broadcast's listing in the directory (signed with the
// broadcast's key: the client's Key must be the broadcaster's).
func (c *Client) Announce(ctx context.Context, id string, u ListingUpdate) (ListingResponse, error) {
	var out ListingResponse
	err := c.do(ctx, http.MethodPut, "/api/v1/broadcasts/"+url.PathEscape(id), u, true, &out)
	return out, err
}

// PublishReplay lists an ended broadcast's replay.
func (c *Client) PublishReplay(ctx context.Context, id, manifest string) (ListingResponse, error) {
	var out ListingResponse
	err := c.do(ctx, http.MethodPut, "/api/v1/broadcasts/"+url.PathEscape(id)+"/replay", ReplayEntry{Manifest: manifest}, true, &out)
	return out, err
}

// PutThumbnail sends a still of live broadcast id (a JPEG that
// CheckThumbnail takes), signed as its broadcaster. A bootstrap older than
// thumbnails answers it with a 404 APIError.
func (c *Client) PutThumbnail(ctx context.Context, id string, jpeg []byte) error {
	return c.do(ctx, http.MethodPut, "/api/v1/broadcasts/"+url.PathEscape(id)+"/thumbnail", Thumbnail{JPEG: jpeg}, true, nil)
}

// List reads the directory.
func (c *Client) List(ctx context.Context, q Query) ([]*Listing, error) {
	v := url.Values{}
	if q.Replays {
		v.Set("state", "replay")
	}
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Followed {
		v.Set("followed", "1")
	}
	var out ListResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/broadcasts?"+v.Encode(), nil, q.Followed, &out)
	return out.Listings, err
}

// Broadcast fetches a public broadcast's listing (a 404 APIError when it
// is not listed, or is private).
func (c *Client) Broadcast(ctx context.Context, id string) (*Listing, error) {
	var l Listing
	if err := c.do(ctx, http.MethodGet, "/api/v1/broadcasts/"+url.PathEscape(id), nil, false, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Follow follows an account key ("twitter:1234").
func (c *Client) Follow(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/follows/"+url.PathEscape(key), nil, true, nil)
}

// Unfollow stops following an account key.
func (c *Client) Unfollow(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/follows/"+url.PathEscape(key), nil, true, nil)
}

// Following lists the account keys the node's account follows.
func (c *Client) Following(ctx context.Context) ([]string, error) {
	out, err := c.Follows(ctx)
	return out.Following, err
}

// Follows says which account the node is signed in as and whom it follows.
func (c *Client) Follows(ctx context.Context) (FollowsResponse, error) {
	var out FollowsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/follows", nil, true, &out)
	return out, err
}

// ImportFollows imports who the account follows on Twitter as
// suggestions, and returns them.
func (c *Client) ImportFollows(ctx context.Context) ([]Suggestion, error) {
	var out SuggestionsResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/follows/import", nil, true, &out)
	return out.Suggestions, err
}

// Suggestions lists the account's follow suggestions.
func (c *Client) Suggestions(ctx context.Context) ([]Suggestion, error) {
	var out SuggestionsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/suggestions", nil, true, &out)
	return out.Suggestions, err
}
