package community

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/clock"
)

// Node is what the community side asks of the node it belongs to.
type Node interface {
	// Join joins the broadcast a link names (or finds it joined) and
	// returns the path of its player on the node's web server. A link that
	// is not one is an error wrapping ErrBadLink.
	Join(ctx context.Context, link string) (player string, err error)
	// ReplayViews returns how many distinct peers were seen watching a
	// broadcast's replay.
	ReplayViews(id string) int
	// ReplayViewsIdentified returns how many of ReplayViews were
	// signed-in accounts' (each counted once).
	ReplayViewsIdentified(id string) int
	// ReplayPage returns the path of the node's own page of a broadcast's
	// replay, once it has ended and the node holds the replay, or "".
	ReplayPage(ctx context.Context, id string) string
}

// Config configures a node's community side.
type Config struct {
	// Bootstraps are the HTTP URLs of the node's community bootstraps
	// (http://boot.example:8090). The node believes the attestations their
	// keys sign; the first is where it signs in, lists its broadcasts and
	// whose directory it serves. Empty: none of that, and the page says so.
	Bootstraps []string
	// Key is the node's libp2p key: it signs the node's requests. Required.
	Key crypto.PrivKey
	// Node is the node. Required.
	Node Node
	// PubSub is the node's GossipSub router; with OnLive and a bootstrap,
	// the go-live notices of api.LiveTopic are taken from it.
	PubSub *pubsub.PubSub
	// OnLive hears when an account this node's account follows goes live.
	// It must not block.
	OnLive func(*api.Listing)
	// OnReminder hears the reminders of scheduled broadcasts of accounts
	// this node's account follows (api.ReminderTopic). It must not block.
	OnReminder func(api.Reminder)
	// Attestation is the node's identity when none was fetched from its
	// bootstrap (identity.Attestation, as marshalled); nil: anonymous.
	Attestation []byte
	// DeviceKey is the node's audience device key (audience.DeviceKey,
	// marshalled): published to the first bootstrap whenever the node
	// holds a new attestation from it, and daily, so that broadcasters
	// can invite its account to private broadcasts. Nil: never.
	DeviceKey []byte
	// ListingInterval is how often a live broadcast's listing is renewed
	// with its viewer count; default DefaultListingInterval.
	ListingInterval time.Duration
	// TrustRefresh is how often the bootstraps' keys and revocations (their
	// signed trust statements) are read again: a revocation reaches this
	// node's chat rooms within it. Default DefaultTrustRefresh.
	TrustRefresh time.Duration
	// Clock stamps listings and paces their renewal; default the system's.
	Clock clock.Clock
	// Logger; default: discard.
	Logger *slog.Logger
}

// DefaultListingInterval is how often a broadcaster renews its listing
// (with its viewer count): well inside the bootstrap's live TTL (2 min).
const DefaultListingInterval = 20 * time.Second

// DefaultTrustRefresh is how often a node reads its bootstraps' trust
// statements again.
const DefaultTrustRefresh = 30 * time.Second

// peersRefresh is how often the bootstraps' libp2p IDs (/api/v1/info) are
// read again.
const peersRefresh = 10 * time.Minute

// Community is a node's side of its community bootstraps. Its methods are
// safe for concurrent use.
type Community struct {
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	self   peer.ID
	client *api.Client // the first bootstrap, signing with the node's key; nil without one
	// clients reads each bootstrap's trust (clients[0] is client).
	clients []*api.Client
	page    http.Handler

	ctx    context.Context // ends at Close: the loops and refreshes stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	live   *pubsub.Topic
	// reminders is ReminderTopic, joined when OnReminder is set.
	reminders *pubsub.Topic

	replays *replayLister

	mu        sync.Mutex
	closed    bool
	peers     map[peer.ID]bool // the bootstraps' libp2p IDs (from /api/v1/info)
	follows   map[string]bool  // account keys this node's account follows
	followsAt time.Time
	listings  map[string]*listed // broadcast ID → its listing, for Broadcaster
	trust     *identity.TrustSet
	sets      []identity.KeySet // each bootstrap's, as last read (zero: never)
	peersAt   time.Time
	att       []byte
	attExp    time.Time
	devAtt    []byte    // the attestation the device key was last published under
	devAt     time.Time // and when
	// idChanged is closed, and replaced, whenever att changes: live
	// listings are renewed at once, so that the directory names the
	// broadcaster within seconds of a sign-in (anonymous again after a
	// sign-out), not at the next ListingInterval.
	idChanged chan struct{}
}

// New starts the node's community side: it reads the bootstraps' key sets
// and the node's own attestation (a bootstrap that cannot be reached is
// logged and asked again later), subscribes to go-live notices, and starts
// listing replays. ctx bounds the start; Close stops it all.
func New(ctx context.Context, cfg Config) (*Community, error) {
	if cfg.Key == nil || cfg.Node == nil {
		return nil, fmt.Errorf("%w: a key and a node are required", ErrConfig)
	}
	for _, u := range cfg.Bootstraps {
		// https, or a pinned fingerprint, or this machine: keys fetched
		// otherwise could be anyone's (api.ParseBootstrapURL).
		if _, _, err := api.ParseBootstrapURL(u); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if cfg.ListingInterval <= 0 {
		cfg.ListingInterval = DefaultListingInterval
	}
	if cfg.TrustRefresh <= 0 {
		cfg.TrustRefresh = DefaultTrustRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrConfig, err)
	}
	c := &Community{cfg: cfg, log: cfg.Logger, clock: clock.OrSystem(cfg.Clock), self: self, idChanged: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if len(cfg.Bootstraps) > 0 {
		// Requests are signed on the system clock, which is the
		// bootstrap's: Clock is the node's, which tests may move.
		hc := &http.Client{Timeout: 15 * time.Second}
		for i, u := range cfg.Bootstraps {
			base, pin, _ := api.ParseBootstrapURL(u)
			cl := &api.Client{Base: base, Pin: pin, HTTP: hc}
			if i == 0 {
				cl.Key = cfg.Key
				c.client = cl
			}
			c.clients = append(c.clients, cl)
		}
		c.sets = make([]identity.KeySet, len(c.clients))
	}
	c.page = c.handler()
	if c.client == nil {
		return c, nil
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.refreshTrust(tctx); err != nil {
		c.log.Warn("bootstrap keys not fetched; attestations are not believed until they are", "err", err)
	}
	if _, err := c.RefreshIdentity(tctx); err != nil && !isNotFound(err) {
		c.log.Warn("own attestation not fetched", "err", err)
	}
	if err := c.subscribeLive(); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.subscribeReminders(); err != nil {
		c.Close()
		return nil, err
	}
	c.replays = newReplayLister(c)
	c.goBackground(func() { c.replays.run(c.ctx) })
	c.goBackground(c.trustLoop)
	return c, nil
}

// Close stops the go-live subscription, the replay listing and any
// refresh under way. It is safe to call more than once.
func (c *Community) Close() {
	c.mu.Lock()
	c.closed = true // no goroutine starts after this
	t, rt := c.live, c.reminders
	c.live, c.reminders = nil, nil
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if t != nil {
		_ = t.Close()
	}
	if rt != nil {
		_ = rt.Close()
	}
}

// goBackground runs f on the community's wait group unless it is closed.
func (c *Community) goBackground(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.wg.Go(f)
	}
}

// HasBootstrap reports whether the node has a bootstrap.
func (c *Community) HasBootstrap() bool { return c.client != nil }

func isNotFound(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// refreshTrust reads every bootstrap's signed trust statement (keys and
// revocations) and, every peersRefresh, its info (libp2p ID). A bootstrap
// that cannot be reached keeps what was last read from it; the others'
// are taken. If the node's own attestation is no longer believed (revoked,
// or its key), it asks for its attestation again.
func (c *Community) refreshTrust(ctx context.Context) error {
	c.mu.Lock()
	withPeers := c.clock.Now().Sub(c.peersAt) >= peersRefresh || c.peers == nil
	c.mu.Unlock()
	peers := map[peer.ID]bool{}
	var errs []error
	sets := make([]identity.KeySet, len(c.clients))
	for i, cl := range c.clients {
		var err error
		if withPeers {
			var info api.Info
			if info, err = cl.Info(ctx); err == nil {
				sets[i] = info.Keys
				if id, err := peer.Decode(info.PeerID); err == nil {
					peers[id] = true
				}
			}
		} else {
			sets[i], err = cl.Trust(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap %s: %w", cl.Base, err))
		}
	}
	c.mu.Lock()
	var known []identity.KeySet
	for i := range sets {
		if len(sets[i].Keys) > 0 {
			c.sets[i] = sets[i]
		}
		if len(c.sets[i].Keys) > 0 {
			known = append(known, c.sets[i])
		}
	}
	if withPeers && len(errs) == 0 {
		c.peers, c.peersAt = peers, c.clock.Now()
	}
	var t *identity.TrustSet
	var err error
	if len(known) > 0 {
		if t, err = identity.NewTrustSet(known...); err == nil {
			c.trust = t
		}
	}
	att := c.att
	c.mu.Unlock()
	if err != nil {
		errs = append(errs, err)
	}
	if t != nil && att != nil {
		if _, verr := t.VerifyBytes(att, c.self, c.clock.Now()); verr != nil {
			c.goBackground(func() {
				rctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
				defer cancel()
				if _, err := c.RefreshIdentity(rctx); err != nil && !isNotFound(err) {
					c.log.Warn("own attestation not refreshed", "err", err)
				}
			})
		}
	}
	return errors.Join(errs...)
}

// trustLoop reads the trust statements again every TrustRefresh until the
// community closes.
func (c *Community) trustLoop() {
	t := c.clock.NewTicker(c.cfg.TrustRefresh)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C():
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.TrustRefresh)
		if err := c.refreshTrust(ctx); err != nil && c.ctx.Err() == nil {
			c.log.Warn("refreshing bootstrap trust", "err", err)
		}
		cancel()
	}
}

// Trust returns the trust set of the node's bootstraps (nil without any,
// or before any was read): their keys and revocations as last read, every
// TrustRefresh. A new set is a new pointer: chat rooms poll it.
func (c *Community) Trust() *identity.TrustSet {
	if c.client == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trust
}

// Attestation returns the node's identity attestation: the one fetched
// from its bootstrap after signing in there, else Config.Attestation (nil:
// anonymous).
func (c *Community) Attestation() []byte {
	c.mu.Lock()
	att, exp := c.att, c.attExp
	c.mu.Unlock()
	if att != nil && c.clock.Now().Before(exp) {
		return att
	}
	return c.cfg.Attestation
}

// RefreshIdentity fetches the node's newest attestation from its first
// bootstrap (after a sign-in) and returns the identity it asserts.
func (c *Community) RefreshIdentity(ctx context.Context) (identity.Identity, error) {
	if c.client == nil {
		return identity.Identity{}, ErrNoBootstrap
	}
	res, err := c.client.Attestation(ctx)
	if isNotFound(err) {
		// Signed out (here or elsewhere), or revoked: the node is
		// anonymous from now on.
		c.setAttestation(nil, time.Time{})
	}
	if err != nil {
		return identity.Identity{}, err
	}
	return c.hold(res.Attestation)
}

// FinishSignIn redeems a sign-in this node started with the one-time code
// its browser was given, and returns the identity the node now holds.
func (c *Community) FinishSignIn(ctx context.Context, code string) (identity.Identity, error) {
	if c.client == nil {
		return identity.Identity{}, ErrNoBootstrap
	}
	res, err := c.client.TwitterFinish(ctx, code)
	if err != nil {
		return identity.Identity{}, err
	}
	return c.hold(res.Attestation)
}

// hold checks that an attestation the bootstrap gave is this node's and
// keeps it.
func (c *Community) hold(att []byte) (identity.Identity, error) {
	a, err := identity.ParseAttestation(att)
	if err != nil {
		return identity.Identity{}, err
	}
	if a.Peer != c.self {
		return identity.Identity{}, fmt.Errorf("%w: the bootstrap returned another peer's attestation", identity.ErrWrongPeer)
	}
	c.setAttestation(att, a.Expires)
	c.publishDevice(att)
	return a.Identity(), nil
}

// SignOut signs this node out at its first bootstrap (everywhere: every
// node of its account), which revokes the attestations it gave; the node
// drops its own at once and reads the bootstraps' revocations again.
func (c *Community) SignOut(ctx context.Context, everywhere bool) error {
	if c.client == nil {
		return ErrNoBootstrap
	}
	if err := c.client.SignOut(ctx, everywhere); err != nil {
		return err
	}
	c.setAttestation(nil, time.Time{})
	return nil
}

// setAttestation keeps the node's attestation (nil: none) and, when it is
// a new one, tells the live listings (idChanged).
func (c *Community) setAttestation(att []byte, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := !bytes.Equal(att, c.att)
	c.att, c.attExp = att, exp
	if changed {
		close(c.idChanged)
		c.idChanged = make(chan struct{})
	}
}

// identityChanged returns a channel closed at the node's next change of
// attestation.
func (c *Community) identityChanged() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idChanged
}

// WebLink returns the first bootstrap's web link for a broadcast
// (https://<bootstrap>/w/<ID>/, which plays it from the tree in any
// browser), or "" without a bootstrap. It is only worth sharing once the
// broadcast is listed there.
func (c *Community) WebLink(id string) string {
	if c.client == nil {
		return ""
	}
	return strings.TrimSuffix(c.client.Base, "/") + "/w/" + url.PathEscape(id) + "/"
}
