package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/bootstrap/page"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/localapi"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// The node's side of its community bootstraps (Config.Bootstrap) is
// package community: trust, the node's own attestation, the listings of
// the broadcasts it roots and of their replays, go-live notices and the
// /directory/ pages. Here is the wiring: what the node gives it
// (communityNode, the broadcasts' listings) and what the node's API
// forwards to it.

// DefaultDirectoryStreamsPerClient is how many of the directory's event
// streams (the live list's, the follow feed) one client may hold open: a
// page holds two.
const DefaultDirectoryStreamsPerClient = 8

// DefaultDirectoryInterval is how often a broadcaster re-announces its
// broadcast (with its viewer count); well inside the bootstrap's live TTL.
const DefaultDirectoryInterval = community.DefaultListingInterval

// startCommunity starts the node's community side.
func (n *Node) startCommunity(ctx context.Context) error {
	c, err := community.New(ctx, community.Config{
		Bootstraps:      n.cfg.Bootstrap,
		Key:             n.key,
		Node:            communityNode{n},
		PubSub:          n.ps,
		OnLive:          n.cfg.OnLive,
		OnReminder:      n.cfg.OnReminder,
		Attestation:     n.cfg.Attestation,
		DeviceKey:       n.cfg.Private.DeviceKey.Key.Marshal(),
		ListingInterval: n.cfg.DirectoryInterval,
		TrustRefresh:    n.cfg.TrustRefresh,
		Clock:           n.clock,
		Logger:          n.log,
	})
	if errors.Is(err, community.ErrConfig) {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	n.community = c
	if err == nil && n.cfg.Private.Mailbox == nil && c.HasBootstrap() {
		// A private broadcast's keys wait at the bootstrap.
		n.cfg.Private.Mailbox, n.bootMailbox = c.Mailbox(), true
	}
	return err
}

// stopCommunity ends the go-live subscription and the replay listing.
func (n *Node) stopCommunity() {
	if n.community != nil {
		n.community.Close()
	}
}

// communityNode is what the community side asks of the node.
type communityNode struct{ n *Node }

var _ community.Node = communityNode{}

// errJoin is what the directory's page is told when a join fails on the
// network: the same whatever the dial met (a refused port, a host that
// speaks something else, a timeout), so that the join is no port scanner.
// The log has the detail.
var errJoin = fmt.Errorf("%w with the broadcast", ErrUnreachable)

func (c communityNode) Join(ctx context.Context, s string) (string, error) {
	l, err := link.Parse(s)
	if err != nil {
		return "", community.BadLink(err)
	}
	if b := c.n.lookup(l.Broadcast); b != nil {
		return b.playerPath(), nil
	}
	if c.n.swarm.Holds(ctx, l.Broadcast) {
		return "/r/" + l.Broadcast + "/", nil // a replay this node has
	}
	b, err := c.n.Watch(ctx, l)
	if err == nil && b.Announcement().Ended {
		_ = b.Close() // over: its replay is what there is to watch
		err = fmt.Errorf("%w: the broadcast has ended", ErrUnreachable)
	}
	switch {
	case errors.Is(err, link.ErrMalformed):
		return "", community.BadLink(err)
	case errors.Is(err, ErrTooMany), errors.Is(err, ErrClosed), errors.Is(err, ErrJoined):
		return "", err // the node's own state: nothing about the network
	case errors.Is(err, ErrUnreachable):
		// Ended, or its broadcaster gone: a peer of the link may still
		// hold the replay (the Replay tab's entries, a late click).
		if r, rerr := c.n.Replay(ctx, l); rerr == nil {
			return r.PlayerPath(), nil
		}
		fallthrough
	case err != nil:
		c.n.log.Info("a join from the directory page failed", "broadcast", shortBroadcast(l.Broadcast), "err", err)
		return "", errJoin
	}
	return b.playerPath(), nil
}

// ResolveAudience looks up, at the node's first bootstrap, the accounts a
// names (handles "@alice" or keys "twitter:1234", its mutuals, a saved
// group) and their devices' audience keys, each attested to its account
// and signed by its device: the members of a private broadcast
// (Audience.Members). ErrUnknownAccount for a named account or group the
// bootstrap does not know, ErrNotSignedIn for mutuals or a group when the
// node is not signed in, ErrNoMailbox without a bootstrap. An account
// with no device key yet is a member with no devices.
func (n *Node) ResolveAudience(ctx context.Context, a community.Audience) ([]Member, error) {
	list, err := n.community.ResolveAudience(ctx, a)
	if err != nil {
		return nil, communityErr(err)
	}
	out := make([]Member, 0, len(list))
	for _, inv := range list {
		out = append(out, Member{Account: inv.Account.Key(), Handle: inv.Account.Handle, Devices: inv.Devices})
	}
	return out, nil
}

// communityErr gives the community side's refusals the node's sentinels.
func communityErr(err error) error {
	switch {
	case errors.Is(err, community.ErrNoBootstrap):
		return fmt.Errorf("%w: %w", ErrNoMailbox, err)
	case errors.Is(err, community.ErrNotSignedIn):
		return ErrNotSignedIn // what the bootstrap said adds nothing
	case errors.Is(err, community.ErrUnknownAccount):
		// "node: unknown account at URL: @nobody", the community's detail.
		return fmt.Errorf("%w%s", ErrUnknownAccount, strings.TrimPrefix(err.Error(), community.ErrUnknownAccount.Error()))
	}
	return err
}

func (c communityNode) ReplayPage(ctx context.Context, id string) string {
	if b := c.n.lookup(id); b != nil {
		return b.replayPath() // "" while live
	}
	if c.n.swarm.Holds(ctx, id) {
		return "/r/" + id + "/"
	}
	return ""
}

func (c communityNode) ReplayViews(id string) int { return c.n.ReplayViews(id) }

func (c communityNode) ReplayViewsIdentified(id string) int { return c.n.ReplayViewsBy(id).Identified }

// noBootstrap makes community.ErrNoBootstrap the node's ErrConfig too.
func noBootstrap(err error) error {
	if errors.Is(err, community.ErrNoBootstrap) {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return err
}

// Trust returns the trust set of the node's bootstraps (nil without any).
func (n *Node) Trust() *identity.TrustSet { return n.community.Trust() }

// Attestation returns this node's identity attestation: the one fetched
// from its bootstrap after signing in there, else Config.Attestation (nil:
// anonymous).
func (n *Node) Attestation() []byte { return n.community.Attestation() }

// RefreshIdentity fetches this node's newest attestation from its first
// bootstrap (after a sign-in) and returns the identity it asserts.
func (n *Node) RefreshIdentity(ctx context.Context) (identity.Identity, error) {
	id, err := n.community.RefreshIdentity(ctx)
	return id, noBootstrap(err)
}

// DirectoryURL is the directory page on this node ("" without a
// bootstrap): what is live, and where to sign in.
func (n *Node) DirectoryURL() string {
	if !n.community.HasBootstrap() {
		return ""
	}
	return n.HTTPURL() + "/directory/"
}

// ListReplay lists an ended broadcast this node rooted as replayable in
// its first bootstrap's directory, until 24 h after its end: the replay
// side calls it once the broadcast's manifest is published (manifest is
// how viewers find it, its CID say).
func (n *Node) ListReplay(ctx context.Context, broadcast, manifest string) error {
	return noBootstrap(n.community.PublishReplay(ctx, broadcast, manifest))
}

// mountDirectory routes /directory/ to the community side's pages. What
// only the node can do (/directory/api/node/…: who it is signed in as, a
// sign-in, phone codes, a join) is its owner's pages' only: JSON, from this
// machine, with the page token, which the page (served here, not by
// package community) carries. The follow feed, an event stream the page
// cannot add a header to, is this machine's only.
func (n *Node) mountDirectory(mux *http.ServeMux) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.community.Handler().ServeHTTP(w, r) // set before the servers start
	})
	mux.Handle("/directory", h)
	mux.Handle("/directory/", h)
	mux.HandleFunc("GET /directory/{$}", n.serveDirectoryPage)
	mux.Handle("/directory/api/node/", n.guard.Owner(h))
	mux.Handle("GET /directory/api/v1/events", n.dirStreams.Handler(h))
	mux.Handle("GET /directory/api/v1/feed", localapi.Local(n.dirStreams.Handler(h)))
}

// serveDirectoryPage serves the directory page (package page's) with the
// page token when it is served to this machine.
func (n *Node) serveDirectoryPage(w http.ResponseWriter, r *http.Request) {
	index, err := fs.ReadFile(page.FS(), "index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // it carries the token
	h.Set("Content-Security-Policy", page.CSP)
	_, _ = w.Write(localapi.WithToken(index, n.guard.PageToken(r)))
}

// listInDirectory has a broadcast this node roots listed in its first
// bootstrap's directory while it lasts, its end listed when it ends.
// With afterMedia, the listing starts at the publisher's first media chunk
// (b.flowing: a keyframe has come), and never if the broadcast ends first.
func (b *Broadcast) listInDirectory(tweet, afterMedia bool) {
	c := b.n.community
	if !c.HasBootstrap() || !b.root {
		return
	}
	b.wg.Go(func() {
		if afterMedia {
			select {
			case <-b.flowing:
			case <-b.done:
				return
			case <-b.ctx.Done():
				return
			}
		}
		c.ListLive(b.ctx, community.Live{ID: b.id, Tweet: tweet, Ended: b.done, Entry: b.listing, Stills: b.stills})
	})
}

// listing is what the directory shows of the broadcast now.
func (b *Broadcast) listing() api.ListingUpdate {
	a := b.Announcement()
	return api.ListingUpdate{Title: a.Title, Link: b.entryLink().String(), Started: a.Started,
		Viewers:       b.treeLink.Audience() + b.treeLink.WebViewers(),
		ReplayViewers: b.n.ReplayViews(b.id), Private: b.caster != nil, Location: b.location.Load()}
}

// listReplay has the community side list the replay of a broadcast this
// node rooted, once its manifest is signed.
func (n *Node) listReplay(b *Broadcast, m *replay.Manifest) {
	_, signed := b.manifest()
	a := b.Announcement()
	u := api.ListingUpdate{Title: a.Title, Link: b.Link().String(), Started: a.Started, Ended: m.Ended}
	if u.Started.IsZero() || u.Started.After(u.Ended) {
		u.Started = m.Started
	}
	n.community.ListReplay(b.id, u, replay.CIDOf(signed).String())
}
