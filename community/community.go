package community

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	// Attestation is the node's identity when none was fetched from its
	// bootstrap (identity.Attestation, as marshalled); nil: anonymous.
	Attestation []byte
	// ListingInterval is how often a live broadcast's listing is renewed
	// with its viewer count; default DefaultListingInterval.
	ListingInterval time.Duration
	// Clock stamps listings and paces their renewal; default the system's.
	Clock clock.Clock
	// Logger; default: discard.
	Logger *slog.Logger
}

// DefaultListingInterval is how often a broadcaster renews its listing
// (with its viewer count): well inside the bootstrap's live TTL (2 min).
const DefaultListingInterval = 20 * time.Second

// trustRefresh is how often the bootstraps' key sets are fetched again (a
// rotation reaches nodes within it).
const trustRefresh = 10 * time.Minute

// Community is a node's side of its community bootstraps. Its methods are
// safe for concurrent use.
type Community struct {
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	self   peer.ID
	client *api.Client // the first bootstrap, signing with the node's key; nil without one
	page   http.Handler

	ctx    context.Context // ends at Close: the loops and refreshes stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	live   *pubsub.Topic

	replays *replayLister

	mu        sync.Mutex
	closed    bool
	peers     map[peer.ID]bool // the bootstraps' libp2p IDs (from /api/v1/info)
	follows   map[string]bool  // account keys this node's account follows
	followsAt time.Time
	trust     *identity.TrustSet
	trustedAt time.Time
	att       []byte
	attExp    time.Time
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrConfig, err)
	}
	c := &Community{cfg: cfg, log: cfg.Logger, clock: clock.OrSystem(cfg.Clock), self: self}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if len(cfg.Bootstraps) > 0 {
		// Requests are signed on the system clock, which is the
		// bootstrap's: Clock is the node's, which tests may move.
		base, pin, _ := api.ParseBootstrapURL(cfg.Bootstraps[0])
		c.client = &api.Client{Base: base, Pin: pin, Key: cfg.Key, HTTP: &http.Client{Timeout: 15 * time.Second}}
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
	c.replays = newReplayLister(c)
	c.goBackground(func() { c.replays.run(c.ctx) })
	return c, nil
}

// Close stops the go-live subscription, the replay listing and any
// refresh under way. It is safe to call more than once.
func (c *Community) Close() {
	c.mu.Lock()
	c.closed = true // no goroutine starts after this
	t := c.live
	c.live = nil
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if t != nil {
		_ = t.Close()
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

// refreshTrust fetches the bootstraps' key sets and peer IDs.
func (c *Community) refreshTrust(ctx context.Context) error {
	infos, err := api.FetchInfos(ctx, c.client.HTTP, c.cfg.Bootstraps...)
	var t *identity.TrustSet
	if err == nil {
		t, err = api.TrustSetOf(infos)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trustedAt = c.clock.Now()
	if err != nil {
		return err
	}
	peers := map[peer.ID]bool{}
	for _, info := range infos {
		if id, err := peer.Decode(info.PeerID); err == nil {
			peers[id] = true
		}
	}
	c.trust, c.peers = t, peers
	return nil
}

// Trust returns the trust set of the node's bootstraps (nil without any),
// fetching it again in the background when it is older than ten minutes.
func (c *Community) Trust() *identity.TrustSet {
	if c.client == nil {
		return nil
	}
	c.mu.Lock()
	t, stale := c.trust, c.clock.Now().Sub(c.trustedAt) > trustRefresh
	if stale {
		c.trustedAt = c.clock.Now() // one refresh at a time
	}
	c.mu.Unlock()
	if stale {
		c.goBackground(func() {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			defer cancel()
			if err := c.refreshTrust(ctx); err != nil {
				c.log.Warn("refreshing bootstrap keys", "err", err)
			}
		})
	}
	return t
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
		c.mu.Lock()
		c.att, c.attExp = nil, time.Time{}
		c.mu.Unlock()
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
	c.mu.Lock()
	c.att, c.attExp = att, a.Expires
	c.mu.Unlock()
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
	c.mu.Lock()
	c.att, c.attExp = nil, time.Time{}
	c.mu.Unlock()
	return nil
}
