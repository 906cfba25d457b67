package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	webrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/internal/p2pkey"
)

// P2PIdentityFile is the name of the bootstrap's libp2p identity key inside
// its data directory. Nodes are configured with the peer ID it gives, so it
// must outlive restarts.
const P2PIdentityFile = "p2p-identity.key"

// DHTPrefix is the protocol prefix of Peerscope's Kademlia DHT
// ("/peerscope/kad/1.0.0"). It is not IPFS's Amino DHT: a community's
// bootstraps and nodes form a DHT of their own, so that a bootstrap in
// server mode is not drafted into serving the IPFS network, and what
// Peerscope stores (who watches what) stays among Peerscope peers.
const DHTPrefix protocol.ID = "/peerscope"

// Defaults of RelayConfig. A relayed circuit must carry a live video stream
// (2.5 Mb/s, about 1.1 GB an hour each way) for as long as a broadcast
// lasts when hole punching fails, so the limits are far above libp2p's
// (128 KiB and 2 minutes, which only suit the few messages of a hole
// punch). What bounds the relay's cost is the number of circuits, not their
// length.
const (
	DefaultRelayData              = 8 << 30 // bytes per direction per circuit
	DefaultRelayDuration          = 6 * time.Hour
	DefaultRelayReservations      = 256
	DefaultRelayCircuits          = 8 // per peer: a parent and a few children
	DefaultRelayReservationsPerIP = 32
	DefaultRelayReservationTTL    = time.Hour
	// DefaultRelayBuffer is the copy buffer per circuit direction: larger
	// than libp2p's 2 KiB so that a video stream is moved in fewer reads.
	DefaultRelayBuffer = 16 << 10
	// DefaultMaxPeers is the connection count above which the bootstrap
	// starts trimming idle connections (relay reservations are kept).
	DefaultMaxPeers = 2000
)

// RelayConfig sizes the circuit relay. Zero fields take the defaults.
type RelayConfig struct {
	// CircuitData is the most bytes a circuit carries in each direction
	// before the relay resets it.
	CircuitData int64
	// CircuitDuration is the longest a circuit lives.
	CircuitDuration time.Duration
	// Reservations is the most peers holding a reservation at once.
	Reservations int
	// ReservationsPerIP bounds the reservations from one IP address (one
	// NAT hides a household).
	ReservationsPerIP int
	// CircuitsPerPeer is the most open circuits to or from one peer.
	CircuitsPerPeer int
	// ReservationTTL is how long a reservation lasts before its peer must
	// renew it.
	ReservationTTL time.Duration
	// Buffer is the copy buffer per circuit direction, in bytes.
	Buffer int
	// Off runs no relay.
	Off bool
	// Open serves a reservation to any peer. By default (false) only a
	// peer Attested says is signed in here gets one: a relay that carries
	// video for anyone is anyone's free CDN.
	Open bool
	// Attested reports whether a peer is signed in at the bootstrap (the
	// daemon asks its store); nil, with Open false, serves nobody.
	Attested func(peer.ID) bool
	// ReservationsPerNetwork bounds the reservations from one network (an
	// IPv4 address, an IPv6 /64).
	ReservationsPerNetwork int
}

func (c *RelayConfig) fill() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.CircuitData == 0 {
		c.CircuitData = DefaultRelayData
	}
	if c.CircuitDuration == 0 {
		c.CircuitDuration = DefaultRelayDuration
	}
	if c.ReservationTTL == 0 {
		c.ReservationTTL = DefaultRelayReservationTTL
	}
	def(&c.Reservations, DefaultRelayReservations)
	def(&c.ReservationsPerIP, DefaultRelayReservationsPerIP)
	def(&c.ReservationsPerNetwork, DefaultRelayReservationsPerIP)
	def(&c.CircuitsPerPeer, DefaultRelayCircuits)
	def(&c.Buffer, DefaultRelayBuffer)
	switch {
	case c.CircuitData < 0:
		return fmt.Errorf("%w: negative relay data limit %d", ErrHostConfig, c.CircuitData)
	case c.CircuitDuration < time.Second:
		return fmt.Errorf("%w: relay duration %s under a second", ErrHostConfig, c.CircuitDuration)
	case c.ReservationTTL < time.Minute:
		return fmt.Errorf("%w: reservation TTL %s under a minute", ErrHostConfig, c.ReservationTTL)
	case c.Reservations < 0, c.ReservationsPerIP < 0, c.CircuitsPerPeer < 0, c.ReservationsPerNetwork < 0:
		return fmt.Errorf("%w: negative relay count", ErrHostConfig)
	case c.Buffer < 512 || c.Buffer > 1<<20:
		return fmt.Errorf("%w: relay buffer %d outside 512 B to 1 MiB", ErrHostConfig, c.Buffer)
	}
	return nil
}

func (c RelayConfig) resources() relay.Resources {
	r := relay.DefaultResources()
	r.Limit = &relay.RelayLimit{Duration: c.CircuitDuration, Data: c.CircuitData}
	r.ReservationTTL = c.ReservationTTL
	r.MaxReservations = c.Reservations
	r.MaxReservationsPerIP = c.ReservationsPerIP
	// Every address in one autonomous system could be one ISP's CGNAT:
	// do not let the ASN bound be tighter than the total.
	r.MaxReservationsPerASN = c.Reservations
	r.MaxCircuits = c.CircuitsPerPeer
	r.BufferSize = c.Buffer
	return r
}

// HostConfig configures the bootstrap's libp2p host. The zero value is
// DefaultHostConfig with an ephemeral identity.
type HostConfig struct {
	// DataDir keeps the identity key (P2PIdentityFile); empty: a new
	// identity each run.
	DataDir string
	// Listen are the listen multiaddrs; default: every interface, TCP,
	// QUIC, WebTransport and WebRTC-direct on port 4001, the port libp2p
	// peers conventionally use.
	Listen []string
	// Peers are other bootstraps (multiaddrs ending in /p2p/<ID>) whose
	// DHT this one joins.
	Peers []string
	// Relay sizes the circuit relay.
	Relay RelayConfig
	// MaxPeers: above this many connections, idle ones are trimmed;
	// default DefaultMaxPeers.
	MaxPeers int
	// Logger; default: discard.
	Logger *slog.Logger
}

// ErrHostConfig is returned for a HostConfig the bootstrap cannot run with.
var ErrHostConfig = errors.New("bootstrap: bad configuration")

// DefaultHostConfig returns what a zero HostConfig field becomes.
func DefaultHostConfig() HostConfig {
	c := HostConfig{
		Listen:   []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/udp/4001/quic-v1/webtransport", "/ip4/0.0.0.0/udp/4001/webrtc-direct"},
		MaxPeers: DefaultMaxPeers,
	}
	_ = c.Relay.fill()
	return c
}

// fill gives zero fields their defaults and refuses what cannot run; it
// returns the bootstrap peers to join.
func (c *HostConfig) fill() ([]peer.AddrInfo, error) {
	if c.Listen == nil {
		c.Listen = DefaultHostConfig().Listen
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxPeers < 10 {
		return nil, fmt.Errorf("%w: max peers %d below 10", ErrHostConfig, c.MaxPeers)
	}
	if err := c.Relay.fill(); err != nil {
		return nil, err
	}
	peers := make([]peer.AddrInfo, 0, len(c.Peers))
	for _, s := range c.Peers {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: peer %q: %w", ErrHostConfig, s, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: peer %q does not end in /p2p/<peer ID>", ErrHostConfig, s)
		}
		peers = append(peers, *info)
	}
	return peers, nil
}

// Host is the bootstrap's libp2p side: a well-known peer that nodes dial
// first, a Kademlia DHT server, an AutoNAT server (v1 and v2) that tells
// nodes whether they are reachable, and a circuit relay through which
// nodes behind NAT are reached and hole-punch each other (DCUtR).
type Host struct {
	h     host.Host
	dht   *dht.IpfsDHT
	relay *relay.Relay
	stats relayStats
	log   *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// NewHost starts the bootstrap's libp2p host. ctx bounds the start (and the
// first dials to cfg.Peers); Close stops the host.
func NewHost(ctx context.Context, cfg HostConfig) (_ *Host, err error) {
	peers, err := cfg.fill()
	if err != nil {
		return nil, err
	}
	keyPath := ""
	if cfg.DataDir != "" {
		keyPath = filepath.Join(cfg.DataDir, P2PIdentityFile)
	}
	key, err := p2pkey.Load(keyPath)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: identity: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.MaxPeers*3/4, cfg.MaxPeers)
	if err != nil {
		return nil, fmt.Errorf("%w: connection manager: %w", ErrHostConfig, err)
	}
	b := &Host{log: cfg.Logger}
	b.h, err = libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		// WebRTC-direct, for browser light nodes (web/peer): it shares
		// the UDP port with QUIC.
		libp2p.Transport(webrtc.New),
		// WebTransport, what a browser light node dials first (no ICE in
		// its handshake): on QUIC's listener too.
		libp2p.Transport(webtransport.New),
		libp2p.ConnectionManager(cm),
		// A bootstrap is run where peers can reach it: that is its point.
		// Saying so starts the AutoNAT service at once instead of after the
		// bootstrap has probed itself through others.
		libp2p.ForceReachabilityPublic(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		// The relay service is started below with our limits; the option
		// would start one only once AutoNAT says we are public.
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: libp2p host: %w", ErrHostConfig, err)
	}
	defer func() {
		if err != nil {
			_ = b.Close()
		}
	}()
	b.log = b.log.With("peer", b.h.ID())
	if !cfg.Relay.Off {
		b.relay, err = relay.New(b.h,
			relay.WithResources(cfg.Relay.resources()),
			relay.WithMetricsTracer(&b.stats),
			relay.WithACL(newRelayACL(cfg.Relay)),
		)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: relay: %w", err)
		}
	}
	b.dht, err = dht.New(b.h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(DHTPrefix),
		dht.BootstrapPeers(peers...),
		// Nothing in Peerscope puts values yet; providers (who has what)
		// are what a tree would look up.
		dht.DisableValues(),
	)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: DHT: %w", err)
	}
	for _, p := range peers {
		if err := b.h.Connect(ctx, p); err != nil {
			// Another bootstrap being down is no reason not to start.
			b.log.Warn("bootstrap peer unreachable", "peer", p.ID, "err", err)
		}
	}
	if len(peers) > 0 {
		if err := b.dht.Bootstrap(ctx); err != nil {
			b.log.Warn("DHT bootstrap", "err", err)
		}
	}
	b.log.Info("libp2p host started", "addrs", b.Addrs())
	return b, nil
}

// ID returns the bootstrap's peer ID.
func (b *Host) ID() peer.ID { return b.h.ID() }

// Host returns the libp2p host.
func (b *Host) Host() host.Host { return b.h }

// DHT returns the bootstrap's DHT.
func (b *Host) DHT() *dht.IpfsDHT { return b.dht }

// Addrs returns the bootstrap's addresses with /p2p/<ID>: what nodes are
// configured with.
func (b *Host) Addrs() []ma.Multiaddr {
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()})
	return out
}

// RelayStats is what the relay has done since the host started.
type RelayStats struct {
	Reservations   int64 // active reservations
	Circuits       int64 // open circuits
	CircuitsOpened int64 // circuits ever opened
	Bytes          int64 // bytes relayed, both directions
}

// RelayStats returns the relay's counters (zero without a relay).
func (b *Host) RelayStats() RelayStats {
	return RelayStats{
		Reservations:   b.stats.reservations.Load(),
		Circuits:       b.stats.circuits.Load(),
		CircuitsOpened: b.stats.opened.Load(),
		Bytes:          b.stats.bytes.Load(),
	}
}

// Close stops the relay, the DHT and the host. It is safe to call more
// than once.
func (b *Host) Close() error {
	b.closeOnce.Do(func() {
		var errs []error
		if b.dht != nil {
			errs = append(errs, b.dht.Close())
		}
		if b.relay != nil {
			errs = append(errs, b.relay.Close())
		}
		if b.h != nil {
			errs = append(errs, b.h.Close())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// relayStats counts what the relay reports through libp2p's metrics hook.
type relayStats struct {
	reservations, circuits, opened, bytes atomic.Int64
}

var _ relay.MetricsTracer = (*relayStats)(nil)

func (s *relayStats) RelayStatus(bool) {}
func (s *relayStats) ConnectionOpened() {
	s.circuits.Add(1)
	s.opened.Add(1)
}
func (s *relayStats) ConnectionClosed(time.Duration)        { s.circuits.Add(-1) }
func (s *relayStats) ConnectionRequestHandled(pbv2.Status)  {}
func (s *relayStats) ReservationRequestHandled(pbv2.Status) {}
func (s *relayStats) BytesTransferred(n int)                { s.bytes.Add(int64(n)) }
func (s *relayStats) ReservationClosed(n int)               { s.reservations.Add(-int64(n)) }
func (s *relayStats) ReservationAllowed(renewal bool) {
	if !renewal {
		s.reservations.Add(1)
	}
}
