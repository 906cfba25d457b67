package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// How a node gets through NAT (see ARCHITECTURE.md, "NAT traversal"):
//
//   - It keeps a connection to each of its bootstrap peers. Identify on
//     that connection tells it the address its NAT maps it to; AutoNAT
//     asks the bootstrap to dial it back there, which says whether it is
//     reachable.
//   - Found unreachable, it reserves a slot on the bootstraps' circuit
//     relays (AutoRelay with the bootstraps as static relays) and
//     advertises /p2p-circuit addresses through them: in its links and in
//     what it tells the tree.
//   - A peer that reaches it through a relay gets a "limited" connection;
//     both then try to punch a hole through their NATs (DCUtR), and the
//     tree's streams move to the direct connection when that works.
//     Otherwise the video stays on the relay.

// Defaults for the NAT traversal.
const (
	// DefaultNATWait bounds how long New waits, when the node has
	// bootstrap peers and may relay, to learn whether it is reachable
	// and, if not, to get relay addresses: the addresses it starts a tree
	// with are the ones other viewers will be told. Behind a NAT that
	// drops what it does not expect, AutoNAT (v1) learns it in about 17 s
	// (the bootstrap's dial-back times out after 15 s): 30 s leaves room
	// for a busy machine.
	DefaultNATWait = 30 * time.Second
	// bootstrapDialTimeout bounds one dial to a bootstrap peer.
	bootstrapDialTimeout = 10 * time.Second
	// DefaultBootstrapRedial is how often a lost bootstrap is dialled
	// again (a restarted bootstrap gets its reservations back then).
	DefaultBootstrapRedial = 30 * time.Second
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

// natOptions returns the libp2p options for getting through NAT.
func natOptions(cfg *Config) []libp2p.Option {
	opts := []libp2p.Option{
		// Hole punching (DCUtR) needs no bootstrap of its own: a peer that
		// reaches us through any relay may punch.
		libp2p.EnableHolePunching(),
	}
	if len(cfg.BootstrapPeers) > 0 {
		opts = append(opts,
			libp2p.EnableAutoRelayWithStaticRelays(cfg.BootstrapPeers,
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

// nat tracks the node's reachability and keeps its bootstraps connected.
type nat struct {
	n            *Node
	reachability atomic.Int32  // network.Reachability
	changed      chan struct{} // kicked on reachability or address changes
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// startNAT subscribes to the host's reachability and address events,
// dials the bootstraps, and waits (at most cfg.NATWait, and ctx) until the
// node knows how it is reached.
func (n *Node) startNAT(ctx context.Context) error {
	t := &nat{n: n, changed: make(chan struct{}, 1)}
	n.nat = t
	sub, err := n.host.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtLocalAddressesUpdated),
		new(event.EvtLocalProtocolsUpdated),
	})
	if err != nil {
		return fmt.Errorf("node: subscribe to reachability: %w", err)
	}
	var bg context.Context
	bg, t.cancel = context.WithCancel(context.Background())
	t.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-bg.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				if r, ok := e.(event.EvtLocalReachabilityChanged); ok {
					t.reachability.Store(int32(r.Reachability))
					n.log.Info("reachability", "is", r.Reachability.String())
				}
				select {
				case t.changed <- struct{}{}:
				default:
				}
			}
		}
	})
	t.wg.Go(func() {
		tick := time.NewTicker(pruneEvery)
		defer tick.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-tick.C:
				t.pruneRelayed()
			}
		}
	})
	if len(n.cfg.BootstrapPeers) == 0 {
		return nil
	}
	for _, p := range n.cfg.BootstrapPeers {
		n.host.ConnManager().Protect(p.ID, "peerscope-bootstrap")
	}
	t.dialBootstraps(ctx)
	t.wg.Go(func() {
		tick := time.NewTicker(n.cfg.BootstrapRedial)
		defer tick.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-tick.C:
				t.dialBootstraps(bg)
			}
		}
	})
	// A bootstrap on a LAN or on this machine (a local setup) cannot tell
	// the node anything about the internet: libp2p's AutoNAT and hole
	// punching ignore addresses that are not public. Do not wait for them.
	public := slices.ContainsFunc(n.cfg.BootstrapPeers, func(p peer.AddrInfo) bool {
		return slices.ContainsFunc(p.Addrs, manet.IsPublicAddr)
	})
	if n.cfg.NATWait > 0 && public {
		wctx, cancel := context.WithTimeout(ctx, n.cfg.NATWait)
		defer cancel()
		if !t.wait(wctx) {
			if err := ctx.Err(); err != nil {
				return err
			}
			n.log.Warn("not ready for NAT traversal in time; starting with the addresses known so far",
				"reachability", n.Reachability().String(), "addrs", n.host.Addrs())
		}
	}
	return nil
}

// dialBootstraps connects to the bootstraps not connected yet, in parallel.
func (t *nat) dialBootstraps(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range t.n.cfg.BootstrapPeers {
		if t.n.host.Network().Connectedness(p.ID) == network.Connected {
			continue
		}
		wg.Go(func() {
			// Forced direct: a bootstrap is dialled at its own addresses,
			// and past the dial backoff libp2p keeps for addresses that
			// failed (while a restarting bootstrap was down).
			dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "peerscope bootstrap"), bootstrapDialTimeout)
			defer cancel()
			if err := t.n.host.Connect(dctx, p); err != nil {
				t.n.log.Warn("bootstrap unreachable", "peer", p.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// pruneRelayed closes the relayed connections to peers that have a direct
// one too and that carry no stream any more but GossipSub's (onlyGossip):
// once hole punching has
// worked and the tree's streams have moved (mesh/p2p does that), the
// circuit would otherwise stay open, holding one of the few circuits the
// relay gives each peer (RelayConfig.CircuitsPerPeer), until the relay's
// limits end it hours later.
func (t *nat) pruneRelayed() {
	nw := t.n.host.Network()
	for _, c := range nw.Conns() {
		if !isCircuit(c.RemoteMultiaddr()) || !onlyGossip(c.GetStreams()) {
			continue
		}
		if t.n.PathTo(c.RemotePeer()) != PathDirect {
			continue
		}
		t.n.log.Debug("closing a relayed connection superseded by a direct one", "peer", c.RemotePeer())
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

// wait returns true once the node is ready to meet peers behind NAT, false
// when ctx ends first. Ready is:
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
func (t *nat) wait(ctx context.Context) bool {
	for {
		punch := slices.Contains(t.n.host.Mux().Protocols(), holepunch.Protocol)
		reached := t.n.cfg.Slots == NoRelay
		switch t.n.Reachability() {
		case network.ReachabilityPublic:
			reached = true
		case network.ReachabilityPrivate:
			reached = reached || slices.ContainsFunc(t.n.host.Addrs(), isCircuit)
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

func (t *nat) close() {
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
}

// Reachability returns what the node knows of its reachability from the
// internet: public, private (behind NAT: reached through relays), or
// unknown (no bootstrap has told it yet).
func (n *Node) Reachability() network.Reachability {
	if n.cfg.Reachability != network.ReachabilityUnknown {
		return n.cfg.Reachability
	}
	if n.nat == nil {
		return network.ReachabilityUnknown
	}
	return network.Reachability(n.nat.reachability.Load())
}

// reachabilityName is the lower-case name of r, for metrics and JSON.
func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// RelayAddrs returns the node's /p2p-circuit addresses (empty unless it
// holds a relay reservation).
func (n *Node) RelayAddrs() []ma.Multiaddr {
	return slices.DeleteFunc(n.host.Addrs(), func(a ma.Multiaddr) bool { return !isCircuit(a) })
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Path says how this node reaches a peer.
type Path string

// Paths.
const (
	PathNone    Path = ""        // not connected
	PathDirect  Path = "direct"  // a direct connection (possibly hole-punched)
	PathRelayed Path = "relayed" // only through a circuit relay
)

// PathTo returns how this node is connected to p: directly when any of its
// connections to p is direct.
func (n *Node) PathTo(p peer.ID) Path {
	path := PathNone
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if !isCircuit(c.RemoteMultiaddr()) {
			return PathDirect
		}
		path = PathRelayed
	}
	return path
}
