package community

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// The node's side of its first bootstrap's private-audience routes (issue
// 13; the routes are in bootstrap/api's audience.go):
//
//	device key: signed in ─► PUT /api/v1/device-keys (again at each new sign-in, and daily)
//	audience:   Audience{handles, mutuals, group} ─► GET …/audience/mutuals, …/groups/{name}
//	            ─► GET /api/v1/device-keys ─► each key's attestation and signature checked ─► Invitees
//	mailbox:    Mailbox(): rosters, tokens and bundles through …/broadcasts/{id}/{audience,tokens,bundles}

// devicePublishEvery is how often a signed-in node publishes its device
// key again (the bootstrap's attestation of it lives at most 30 days, and
// ends with the session).
const devicePublishEvery = 24 * time.Hour

// publishDevice publishes the node's device key (Config.DeviceKey) to its
// first bootstrap for the attestation att it holds, unless it did so for
// this attestation less than devicePublishEvery ago.
func (c *Community) publishDevice(att []byte) {
	if c.client == nil || c.cfg.DeviceKey == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	c.mu.Lock()
	done := string(c.devAtt) == string(att) && c.clock.Now().Sub(c.devAt) < devicePublishEvery
	c.mu.Unlock()
	if done {
		return
	}
	if err := c.PublishDeviceKey(ctx); err != nil {
		c.log.Warn("device key not published: private broadcasts cannot invite this node", "err", err)
		return
	}
	c.mu.Lock()
	c.devAtt, c.devAt = att, c.clock.Now()
	c.mu.Unlock()
}

// PublishDeviceKey publishes the node's audience device key to its first
// bootstrap, which attests it to the account the node is signed in as:
// what a broadcaster looks up to invite this node's account.
func (c *Community) PublishDeviceKey(ctx context.Context) error {
	if c.client == nil {
		return ErrNoBootstrap
	}
	if c.cfg.DeviceKey == nil {
		return fmt.Errorf("%w: no device key", ErrConfig)
	}
	_, err := c.client.PublishDeviceKey(ctx, c.cfg.DeviceKey)
	return signInNeeded(err)
}

// signInNeeded makes the bootstrap's "not signed in" answer ErrNotSignedIn.
func signInNeeded(err error) error {
	var ae *api.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden && ae.Code == "not_signed_in" {
		return fmt.Errorf("%w: %s", ErrNotSignedIn, ae.Message)
	}
	return err
}

// SignedIn reports whether the node is signed in at its first bootstrap
// (asking it: a sign-out elsewhere counts).
func (c *Community) SignedIn(ctx context.Context) error {
	if c.client == nil {
		return ErrNoBootstrap
	}
	_, err := c.RefreshIdentity(ctx)
	if isNotFound(err) {
		return fmt.Errorf("%w at %s", ErrNotSignedIn, c.client.Base)
	}
	return err
}

// Audience names who may watch a private broadcast: accounts (by handle,
// "@alice", or by key, "twitter:1234"), the accounts that follow each
// other with this node's (Mutuals), and a saved group of its account's.
type Audience struct {
	Accounts []string
	Mutuals  bool
	Group    string
}

// An Invitee is an account of a private broadcast's audience with its
// devices' audience keys, each attested by the bootstrap to the account
// and signed by its device (both checked here).
type Invitee struct {
	Account api.Account
	Devices []*audience.DeviceKey
}

// ResolveAudience turns a into the accounts it names, with their devices'
// keys, from the first bootstrap. An account named in Accounts
// that the bootstrap does not know is ErrUnknownAccount; the members of a
// group or the mutuals it does not know are left out. An account without
// a device key is an invitee with no devices (it may publish one later).
// Mutuals and groups need the node signed in (ErrNotSignedIn).
func (c *Community) ResolveAudience(ctx context.Context, a Audience) ([]Invitee, error) {
	if c.client == nil {
		return nil, ErrNoBootstrap
	}
	named, err := namedAccounts(a.Accounts)
	if err != nil {
		return nil, err
	}
	extra, err := c.accountsOf(ctx, a)
	if err != nil {
		return nil, err
	}
	out, found, err := c.invitees(ctx, append(slices.Clone(named), extra...))
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, s := range named {
		if !found[s] {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w at %s: %s", ErrUnknownAccount, c.client.Base, strings.Join(unknown, ", "))
	}
	return out, nil
}

// namedAccounts reads accounts as named: handles ("@alice", or "alice")
// and account keys ("twitter:1234"), each once.
func namedAccounts(list []string) ([]string, error) {
	var named []string
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "@"):
		case strings.Contains(s, ":"):
			if err := api.CheckAccountKey(s); err != nil {
				return nil, fmt.Errorf("%w: %q: %w", ErrUnknownAccount, s, err)
			}
		default:
			s = "@" + s
		}
		if !slices.Contains(named, s) {
			named = append(named, s)
		}
	}
	return named, nil
}

// accountsOf returns the account keys of a's mutuals and group.
func (c *Community) accountsOf(ctx context.Context, a Audience) ([]string, error) {
	var out []string
	if a.Mutuals {
		list, err := c.client.Mutuals(ctx)
		if err != nil {
			return nil, fmt.Errorf("mutuals: %w", signInNeeded(err))
		}
		for _, m := range list {
			out = append(out, m.Key())
		}
	}
	if a.Group != "" {
		g, err := c.client.Group(ctx, a.Group)
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: no saved group %q", ErrUnknownAccount, a.Group)
		}
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", a.Group, signInNeeded(err))
		}
		out = append(out, g.Members...)
	}
	return out, nil
}

// invitees looks up the device keys of accounts (handles and keys),
// MaxDeviceKeyLookups a request, and keeps those whose attestation (under
// the node's trust set) and device signature check. found says which of
// the names asked for the bootstrap knew.
func (c *Community) invitees(ctx context.Context, all []string) ([]Invitee, map[string]bool, error) {
	trust := c.Trust()
	if trust == nil {
		if err := c.refreshTrust(ctx); err != nil {
			return nil, nil, err
		}
		if trust = c.Trust(); trust == nil {
			return nil, nil, fmt.Errorf("%w: the bootstrap's keys are not known", ErrConfig)
		}
	}
	found := map[string]bool{}
	seen := map[string]bool{} // accounts, once
	var out []Invitee
	now := c.clock.Now()
	for len(all) > 0 {
		batch := all[:min(len(all), api.MaxDeviceKeyLookups)]
		all = all[len(batch):]
		var keys, handles []string
		for _, s := range batch {
			if strings.HasPrefix(s, "@") {
				handles = append(handles, s)
			} else {
				keys = append(keys, s)
			}
		}
		accounts, err := c.client.DeviceKeys(ctx, keys, handles)
		if err != nil {
			return nil, nil, fmt.Errorf("device keys: %w", err)
		}
		for _, ak := range accounts {
			found[ak.Account.Key()], found[ak.Account.Handle] = true, true
			if seen[ak.Account.Key()] {
				continue
			}
			seen[ak.Account.Key()] = true
			inv := Invitee{Account: ak.Account}
			for _, e := range ak.Keys {
				k, att, err := e.Open(trust, now)
				if err == nil && att.Account != ak.Account.Key() {
					err = fmt.Errorf("attested to %s", att.Account)
				}
				if err != nil {
					c.log.Warn("a device key refused", "account", ak.Account.Key(), "err", err)
					continue
				}
				inv.Devices = append(inv.Devices, k)
			}
			out = append(out, inv)
		}
	}
	return out, found, nil
}

// Mailbox returns the mailbox.Mailbox of the node's first bootstrap (nil
// without one): a private broadcast's roster, tokens and bundles through
// its audience routes, signed with the node's key.
func (c *Community) Mailbox() mailbox.Mailbox {
	if c.client == nil {
		return nil
	}
	return bootstrapMailbox{c}
}

// bootstrapMailbox is a mailbox.Mailbox over the bootstrap's audience
// routes. What the bootstrap answers is mapped onto the mailbox's errors
// (404 and a broadcast not listed private: ErrNotFound, 403: ErrForbidden,
// other refusals: ErrRefused), and what it hands out is parsed (each is
// checked by the node as from anywhere: signatures, roster versions).
type bootstrapMailbox struct{ c *Community }

var (
	_ mailbox.Mailbox = bootstrapMailbox{}
	_ mailbox.Batcher = bootstrapMailbox{}
)

// mailboxErr maps an answer of the bootstrap onto the mailbox's errors.
func mailboxErr(err error) error {
	var ae *api.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Status == http.StatusNotFound, ae.Status == http.StatusConflict && ae.Code == "not_private":
		return fmt.Errorf("%w: %w", mailbox.ErrNotFound, err)
	case ae.Status == http.StatusForbidden && ae.Code == "not_signed_in":
		return fmt.Errorf("%w: %w: %w", mailbox.ErrRefused, ErrNotSignedIn, err)
	case ae.Status == http.StatusForbidden:
		return fmt.Errorf("%w: %w", mailbox.ErrForbidden, err)
	case ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests && ae.Status != http.StatusUnauthorized:
		return fmt.Errorf("%w: %w", mailbox.ErrRefused, err)
	}
	return err
}

func (m bootstrapMailbox) PutRoster(ctx context.Context, r *audience.Roster) error {
	_, err := m.c.client.PutRoster(ctx, r.Broadcast, r.Marshal())
	return mailboxErr(err)
}

func (m bootstrapMailbox) PutToken(ctx context.Context, t *audience.Token) error {
	return m.PutTokens(ctx, []*audience.Token{t})
}

func (m bootstrapMailbox) PutBundle(ctx context.Context, b *audience.Bundle) error {
	return m.PutBundles(ctx, []*audience.Bundle{b})
}

// PutTokens sends tokens, MaxTokensPerPut a request, grouped by broadcast.
func (m bootstrapMailbox) PutTokens(ctx context.Context, ts []*audience.Token) error {
	by := map[string][][]byte{}
	for _, t := range ts {
		by[t.Broadcast] = append(by[t.Broadcast], t.Marshal())
	}
	for id, raw := range by {
		for len(raw) > 0 {
			n := min(len(raw), api.MaxTokensPerPut)
			if _, err := m.c.client.PutTokens(ctx, id, raw[:n]); err != nil {
				return mailboxErr(err)
			}
			raw = raw[n:]
		}
	}
	return nil
}

// PutBundles sends bundles, MaxBundlesPerPut a request, grouped by
// broadcast.
func (m bootstrapMailbox) PutBundles(ctx context.Context, bs []*audience.Bundle) error {
	by := map[string][][]byte{}
	for _, b := range bs {
		by[b.Broadcast] = append(by[b.Broadcast], b.Marshal())
	}
	for id, raw := range by {
		for len(raw) > 0 {
			n := min(len(raw), api.MaxBundlesPerPut)
			if _, err := m.c.client.PutBundles(ctx, id, raw[:n]); err != nil {
				return mailboxErr(err)
			}
			raw = raw[n:]
		}
	}
	return nil
}

func (m bootstrapMailbox) Roster(ctx context.Context, broadcast string) (*audience.Roster, error) {
	res, err := m.c.client.Roster(ctx, broadcast)
	if err != nil {
		return nil, mailboxErr(err)
	}
	return audience.ParseRoster(res.Roster)
}

// Token asks for p's token, which the bootstrap gives only to p: asked for
// another peer's, it is ErrForbidden without asking.
func (m bootstrapMailbox) Token(ctx context.Context, broadcast string, p peer.ID) (*audience.Token, error) {
	if p != m.c.self {
		return nil, fmt.Errorf("%w: only %s's own node may fetch its token", mailbox.ErrForbidden, p)
	}
	res, err := m.c.client.Token(ctx, broadcast, p.String())
	if err != nil {
		return nil, mailboxErr(err)
	}
	return audience.ParseToken(res.Token)
}

func (m bootstrapMailbox) Bundles(ctx context.Context, broadcast string, device audience.Fingerprint, after uint32) ([]*audience.Bundle, error) {
	if after == ^uint32(0) {
		return nil, nil
	}
	res, err := m.c.client.Bundles(ctx, broadcast, after+1)
	if err != nil {
		return nil, mailboxErr(err)
	}
	var out []*audience.Bundle
	for _, raw := range res.Bundles {
		b, err := audience.ParseBundle(raw)
		if err != nil {
			return nil, err
		}
		if b.Recipient == device && b.Epoch > after && b.Broadcast == broadcast {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *audience.Bundle) int { return cmp.Compare(a.Epoch, b.Epoch) })
	return out, nil
}
