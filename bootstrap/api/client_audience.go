package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// The Client's side of the private-audience routes (audience.go).

// PublishDeviceKey publishes the node's audience device key
// (audience.DeviceKey.Marshal, signed by the client's Key) to its account;
// the node must be signed in. The answer carries the bootstrap's
// attestation of the key.
func (c *Client) PublishDeviceKey(ctx context.Context, deviceKey []byte) (DeviceKeyEntry, error) {
	var out DeviceKeyEntry
	err := c.do(ctx, http.MethodPut, "/api/v1/device-keys", DeviceKeyPublish{DeviceKey: deviceKey}, true, &out)
	return out, err
}

// DeviceKeys fetches the current device keys of accounts, named by account
// key ("twitter:1234") or by handle ("@alice"); at most
// MaxDeviceKeyLookups of both. Accounts unknown here are left out. Check
// each entry with DeviceKeyEntry.Open before wrapping for it.
func (c *Client) DeviceKeys(ctx context.Context, accounts, handles []string) ([]AccountDeviceKeys, error) {
	v := url.Values{}
	for _, a := range accounts {
		v.Add("account", a)
	}
	for _, h := range handles {
		v.Add("handle", h)
	}
	var out DeviceKeysResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/device-keys?"+v.Encode(), nil, false, &out)
	return out.Accounts, err
}

// Mutuals lists the accounts that follow the node's account and that it
// follows.
func (c *Client) Mutuals(ctx context.Context) ([]Account, error) {
	var out MutualsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/audience/mutuals", nil, true, &out)
	return out.Mutuals, err
}

// PutRoster stores a private broadcast's roster (audience.Roster.Marshal);
// the client's Key must be the broadcaster's, the broadcast listed as
// private, and the version above the stored one's (409 otherwise). It
// returns once the roster is durable.
func (c *Client) PutRoster(ctx context.Context, id string, roster []byte) (RosterResponse, error) {
	var out RosterResponse
	err := c.do(ctx, http.MethodPut, audiencePath(id, "audience"), RosterPut{Roster: roster}, true, &out)
	return out, err
}

// Roster fetches a private broadcast's newest roster: for its broadcaster
// and its member devices only.
func (c *Client) Roster(ctx context.Context, id string) (RosterResponse, error) {
	var out RosterResponse
	err := c.do(ctx, http.MethodGet, audiencePath(id, "audience"), nil, true, &out)
	return out, err
}

// PutBundles drops wrapped epoch secrets (audience.Bundle.Marshal, at most
// MaxBundlesPerPut) in the broadcast's mailbox, each for a device of the
// stored roster; the client's Key must be the broadcaster's.
func (c *Client) PutBundles(ctx context.Context, id string, bundles [][]byte) (BundlesStored, error) {
	var out BundlesStored
	err := c.do(ctx, http.MethodPut, audiencePath(id, "bundles"), BundlesPut{Bundles: bundles}, true, &out)
	return out, err
}

// Bundles fetches the bundles wrapped for this device (the client's Key is
// its peer) from epoch since on; a device not in the newest roster gets
// 403.
func (c *Client) Bundles(ctx context.Context, id string, since uint32) (BundlesResponse, error) {
	var out BundlesResponse
	path := audiencePath(id, "bundles")
	if since > 0 {
		path += "?since=" + strconv.FormatUint(uint64(since), 10)
	}
	err := c.do(ctx, http.MethodGet, path, nil, true, &out)
	return out, err
}

// PutTokens leaves membership tokens (audience.Token.Marshal, at most
// MaxTokensPerPut) in the broadcast's mailbox, each for a device peer of the
// stored roster; the client's Key must be the broadcaster's. A token
// replaces an older one of its peer.
func (c *Client) PutTokens(ctx context.Context, id string, tokens [][]byte) (TokensStored, error) {
	var out TokensStored
	err := c.do(ctx, http.MethodPut, audiencePath(id, "tokens"), TokensPut{Tokens: tokens}, true, &out)
	return out, err
}

// Token fetches the membership token of device peer p: only p itself may
// (the client's Key is p's), and only while the newest roster lists it
// (403 otherwise).
func (c *Client) Token(ctx context.Context, id string, p string) (TokenResponse, error) {
	var out TokenResponse
	err := c.do(ctx, http.MethodGet, audiencePath(id, "tokens/"+url.PathEscape(p)), nil, true, &out)
	return out, err
}

// Invitations lists the private broadcasts the node's account is invited
// to.
func (c *Client) Invitations(ctx context.Context) ([]Invitation, error) {
	var out InvitationsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/invitations", nil, true, &out)
	return out.Invitations, err
}

// PutGroup saves (or replaces) one of the account's groups, its members
// named by account key or handle, and returns it as stored (handles
// resolved to account keys).
func (c *Client) PutGroup(ctx context.Context, g Group) (Group, error) {
	var out Group
	err := c.do(ctx, http.MethodPut, "/api/v1/groups/"+url.PathEscape(g.Name), g, true, &out)
	return out, err
}

// Groups lists the account's saved groups.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out GroupsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/groups", nil, true, &out)
	return out.Groups, err
}

// Group fetches one of the account's saved groups.
func (c *Client) Group(ctx context.Context, name string) (Group, error) {
	var out Group
	err := c.do(ctx, http.MethodGet, "/api/v1/groups/"+url.PathEscape(name), nil, true, &out)
	return out, err
}

// DeleteGroup deletes one of the account's saved groups.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/groups/"+url.PathEscape(name), nil, true, nil)
}

func audiencePath(id, what string) string {
	return "/api/v1/broadcasts/" + url.PathEscape(id) + "/" + what
}
