package nat

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peerscope/peerscope/internal/clock"
)

const (
	// DefaultWait bounds how long Start waits, when the node has bootstrap
	// peers and may relay, to learn whether it is reachable and, if not,
	// to get relay addresses: the addresses it starts a tree with are the
	// ones other viewers will be told. Behind a NAT that drops what it does
	// not expect, AutoNAT (v1) learns it in about 17 s (the bootstrap's
	// dial-back times out after 15 s): 30 s leaves room for a busy machine.
	DefaultWait = 30 * time.Second
	// DefaultRedial is how often a lost bootstrap is dialled again (a
	// restarted bootstrap gets its reservations back then).
	DefaultRedial = 30 * time.Second

	// dialTimeout bounds one dial to a bootstrap peer.
	dialTimeout = 10 * time.Second
	// pruneEvery is how often relayed connections made useless by a
	// direct one are closed.
	pruneEvery = 5 * time.Second
	// relayBackoff is how long AutoRelay waits before asking a relay that
	// failed again, and relayMinInterval how often it looks at its relay
	// list (libp2p's defaults, an hour and 30 s, are for relays found in
	// the DHT; asking our few bootstraps again costs nothing, and a node
	// whose bootstrap restarted should not be unreachable for long).
	relayBackoff     = 5 * time.Second
	relayMinInterval = 5 * time.Second
)

// Config is what the traversal works with.
type Config struct {
	// Bootstraps are the peers that tell the node how it is reached and
	// relay for it; none: only hole punching, through any relay.
	Bootstraps []peer.AddrInfo
	// Reachability, when not unknown, is taken as fact instead of asking
	// AutoNAT (private: always reserve relay slots).
	Reachability network.Reachability
	// Relays says whether the node may relay to children: one that relays
	// to nobody need not be reachable (it dials its parent, which answers
	// on that connection), so Start does not wait for that.
	Relays bool
	// Wait bounds how long Start waits to be ready; 0 or less: no wait.
	Wait time.Duration
	// Redial is how often a lost bootstrap is dialled again; default
	// DefaultRedial.
	Redial time.Duration
	// Clock paces the redials and the pruning; default the system's.
	Clock clock.Clock
	// Logger; default: discard.
	Logger *slog.Logger
}

// Options returns the libp2p options for getting through NAT.
func Options(cfg Config) []libp2p.Option {
	opts := []libp2p.Option{
		// Hole punching (DCUtR) needs no bootstrap of its own: a peer that
		// reaches us through any relay may punch.
		libp2p.EnableHolePunching(),
	}
	if len(cfg.Bootstraps) > 0 {
		opts = append(opts,
			libp2p.EnableAutoRelayWithStaticRelays(cfg.Bootstraps,
				autorelay.WithBootDelay(0),
				autorelay.WithBackoff(relayBackoff),
				autorelay.WithMinInterval(relayMinInterval),
			),
			libp2p.EnableAutoNATv2(),
		)
	}
	switch cfg.Reachability {
	case network.ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	case network.ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	return opts
}

// Traversal tracks a host's reachability and keeps its bootstraps
// connected. Its methods are safe for concurrent use.
type Traversal struct {
	h            host.Host
	cfg          Config
	log          *slog.Logger
	clock        clock.Clock
	reachability atomic.Int32  // network.Reachability
	changed      chan struct{} // kicked on reachability or address changes
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// Start subscribes to the host's reachability and address events, dials
// the bootstraps, and waits (at most cfg.Wait, and ctx) until the host is
// ready to meet peers behind NAT. ctx bounds the start only; Close stops
// the traversal. On an error the traversal is closed.
func Start(ctx context.Context, h host.Host, cfg Config) (*Traversal, error) {
	if cfg.Redial <= 0 {
		cfg.Redial = DefaultRedial
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Traversal{h: h, cfg: cfg, log: cfg.Logger, clock: clock.OrSystem(cfg.Clock), changed: make(chan struct{}, 1)}
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtLocalAddressesUpdated),
		new(event.EvtLocalProtocolsUpdated),
	})
	if err != nil {
		return nil, fmt.Errorf("nat: subscribe to reachability: %w", err)
	}
	var bg context.Context
	bg, t.cancel = context.WithCancel(context.Background())
	t.wg.Go(func() { t.follow(bg, sub) })
	t.wg.Go(func() { t.every(bg, pruneEvery, t.pruneRelayed) })
	if len(cfg.Bootstraps) == 0 {
		return t, nil
	}
	for _, p := range cfg.Bootstraps {
		h.ConnManager().Protect(p.ID, "peerscope-bootstrap")
	}
	t.dialBootstraps(ctx)
	t.wg.Go(func() { t.every(bg, cfg.Redial, func() { t.dialBootstraps(bg) }) })
	if err := t.awaitReady(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// follow keeps the reachability the host learns and kicks waiters on every
// change of it or of the host's addresses and protocols.
func (t *Traversal) follow(ctx context.Context, sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			if r, ok := e.(event.EvtLocalReachabilityChanged); ok {
				t.reachability.Store(int32(r.Reachability))
				t.log.Info("reachability", "is", r.Reachability.String())
			}
			select {
			case t.changed <- struct{}{}:
			default:
			}
		}
	}
}

// every runs f every d until ctx ends.
func (t *Traversal) every(ctx context.Context, d time.Duration, f func()) {
	tick := t.clock.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			f()
		}
	}
}

// awaitReady waits, when there is a public bootstrap to learn from, until
// the host is ready (ready) or cfg.Wait passes; only ctx's end is an error.
func (t *Traversal) awaitReady(ctx context.Context) error {
	// A bootstrap on a LAN or on this machine (a local setup) cannot tell
	// the node anything about the internet: libp2p's AutoNAT and hole
	// punching ignore addresses that are not public. Do not wait for them.
	public := slices.ContainsFunc(t.cfg.Bootstraps, func(p peer.AddrInfo) bool {
		return slices.ContainsFunc(p.Addrs, manet.IsPublicAddr)
	})
	if t.cfg.Wait <= 0 || !public {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, t.cfg.Wait)
	defer cancel()
	if !t.ready(wctx) {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.log.Warn("not ready for NAT traversal in time; starting with the addresses known so far",
			"reachability", t.Reachability().String(), "addrs", t.h.Addrs())
	}
	return nil
}

// dialBootstraps connects to the bootstraps not connected yet, in parallel.
func (t *Traversal) dialBootstraps(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range t.cfg.Bootstraps {
		if t.h.Network().Connectedness(p.ID) == network.Connected {
			continue
		}
		wg.Go(func() {
			// Forced direct: a bootstrap is dialled at its own addresses,
			// and past the dial backoff libp2p keeps for addresses that
			// failed (while a restarting bootstrap was down).
			dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "peerscope bootstrap"), dialTimeout)
			defer cancel()
			if err := t.h.Connect(dctx, p); err != nil {
				t.log.Warn("bootstrap unreachable", "peer", p.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// pruneRelayed closes the relayed connections to peers that have a direct
// one too and that carry no stream any more but GossipSub's (onlyGossip):
// once hole punching has worked and the tree's streams have moved
// (mesh/p2p does that), the circuit would otherwise stay open, holding one
// of the few circuits the relay gives each peer
// (RelayConfig.CircuitsPerPeer), until the relay's limits end it hours
// later.
func (t *Traversal) pruneRelayed() {
	for _, c := range t.h.Network().Conns() {
		if !isCircuit(c.RemoteMultiaddr()) || !onlyGossip(c.GetStreams()) {
			continue
		}
		if PathTo(t.h, c.RemotePeer()) != PathDirect {
			continue
		}
		t.log.Debug("closing a relayed connection superseded by a direct one", "peer", c.RemotePeer())
		_ = c.Close()
	}
}

// onlyGossip reports whether streams are all GossipSub's (or none): those
// may be cut, since GossipSub opens a new stream on the peer's direct
// connection when one of its streams dies while the peer stays connected.
func onlyGossip(streams []network.Stream) bool {
	for _, s := range streams {
		p := string(s.Protocol())
		if !strings.HasPrefix(p, "/meshsub/") && !strings.HasPrefix(p, "/floodsub/") {
			return false
		}
	}
	return true
}

// ready returns true once the host is ready to meet peers behind NAT,
// false when ctx ends first. Ready is:
//
//   - able to hole-punch: libp2p's DCUtR service takes requests only once
//     the host knows a public address of its own (the one its NAT gives it,
//     which the bootstrap observes), and a peer that reaches this node
//     through a relay before then gives up punching;
//   - and, for a node that may relay to children, known to be reachable,
//     or known not to be and holding relay addresses: the addresses it
//     starts a tree with are the ones the tree passes on.
//
// A node that relays to nobody need not be reachable: it dials its parent,
// and the parent answers on that connection.
func (t *Traversal) ready(ctx context.Context) bool {
	for {
		punch := slices.Contains(t.h.Mux().Protocols(), holepunch.Protocol)
		reached := !t.cfg.Relays
		switch t.Reachability() {
		case network.ReachabilityPublic:
			reached = true
		case network.ReachabilityPrivate:
			reached = reached || slices.ContainsFunc(t.h.Addrs(), isCircuit)
		}
		if punch && reached {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.changed:
		}
	}
}

// Close stops following, pruning and redialling. Safe on a nil Traversal.
func (t *Traversal) Close() {
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
}

// Reachability returns what the host knows of its reachability from the
// internet: public, private (behind NAT: reached through relays), or
// unknown (no bootstrap has told it yet); Config.Reachability when set.
func (t *Traversal) Reachability() network.Reachability {
	if t.cfg.Reachability != network.ReachabilityUnknown {
		return t.cfg.Reachability
	}
	return network.Reachability(t.reachability.Load())
}

// Name is the lower-case name of r, for metrics and JSON.
func Name(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// RelayAddrs returns the host's /p2p-circuit addresses (empty unless it
// holds a relay reservation).
func RelayAddrs(h host.Host) []ma.Multiaddr {
	return slices.DeleteFunc(h.Addrs(), func(a ma.Multiaddr) bool { return !isCircuit(a) })
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Path says how a host reaches a peer.
type Path string

// Paths.
const (
	PathNone    Path = ""        // not connected
	PathDirect  Path = "direct"  // a direct connection (possibly hole-punched)
	PathRelayed Path = "relayed" // only through a circuit relay
)

// PathTo returns how h is connected to p: directly when any of its
// connections to p is direct.
func PathTo(h host.Host, p peer.ID) Path {
	path := PathNone
	for _, c := range h.Network().ConnsToPeer(p) {
		if !isCircuit(c.RemoteMultiaddr()) {
			return PathDirect
		}
		path = PathRelayed
	}
	return path
}
