package node

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	webrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/dirlock"
	"github.com/peerscope/peerscope/internal/httpserve"
	"github.com/peerscope/peerscope/internal/localapi"
	"github.com/peerscope/peerscope/internal/p2pkey"
	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/tlscert"
	"github.com/peerscope/peerscope/media/publish"
	"github.com/peerscope/peerscope/media/whip"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/nat"
	"github.com/peerscope/peerscope/replay"
	"github.com/peerscope/peerscope/replay/swarm"

	"github.com/ipfs/boxo/bitswap"
)

// Defaults for the zero values of Config.
const (
	DefaultHTTP     = "127.0.0.1:0"
	DefaultHTTPS    = "127.0.0.1:0"
	DefaultUpload   = 10_000_000 // bit/s
	DefaultBitrate  = 2_500_000  // bit/s, until a broadcast says
	DefaultHeadroom = 1.5
	// DefaultAnnounceInterval is how often a viewer asks its parent for a
	// newer announcement.
	DefaultAnnounceInterval = 2 * time.Second
	// DefaultLiveWindow is how much of a live broadcast a node keeps in
	// memory: its LL-HLS playlist, and a viewer's chunk window (the chunks
	// it backfills children and answers pulls from). Twelve seconds is the
	// least a live playlist may hold with 4 s segments (three target
	// durations, RFC 8216 §6.2.2) and many times what a backfill (a second
	// and the run from the last keyframe) or a rejoin's pulls reach back.
	// 30 s kept 9.4 MB at 2.5 Mb/s, most of a viewer's heap
	// (docs/ARCHITECTURE.md, "What a light node holds, and what wakes it").
	DefaultLiveWindow = 12 * time.Second
	// DefaultMaxWatching is how many broadcasts a node watches at once: a
	// person watches one or two; each costs the node upload, memory and
	// connections.
	DefaultMaxWatching = 8
)

// DefaultListen is where the libp2p host listens by default (Config.Listen
// empty), with DefaultWebTransportListen and DefaultBrowserListen beside
// it: loopback only, which is what the demo and tests want; a node meant
// for others sets Config.Listen (e.g. /ip4/0.0.0.0/tcp/0,
// /ip4/0.0.0.0/udp/0/quic-v1, /ip4/0.0.0.0/udp/0/quic-v1/webtransport and
// /ip4/0.0.0.0/udp/0/webrtc-direct).
const DefaultListen = "/ip4/127.0.0.1/tcp/0"

// DefaultBrowserListen is the WebRTC-direct address a node listens on by
// default, so that a browser light node (web/peer) can dial it: the
// address carries the certificate's hash (/certhash), which the browser
// checks instead of a CA (docs/ARCHITECTURE.md, "The browser light node").
const DefaultBrowserListen = "/ip4/127.0.0.1/udp/0/webrtc-direct"

// DefaultWebTransportListen is the WebTransport address a node listens on
// by default: what a browser light node dials first (its handshake is a
// QUIC one, with no ICE; WebRTC-direct is the fallback). Its /certhash
// names the node's self-signed certificates, which the browser checks
// instead of a CA.
const DefaultWebTransportListen = "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"

// NoRelay, as Config.Slots, makes a node that relays to nobody (a phone on
// a metered connection).
const NoRelay = -1

// IdentityFile is the name of the libp2p identity key inside Config.DataDir.
const IdentityFile = "identity.key"

// Config configures a Node. The zero value is a loopback node with an
// ephemeral identity.
type Config struct {
	// DataDir keeps the node's identity key (IdentityFile) and its
	// self-signed TLS certificate (in DataDir/tls). Empty: a new identity
	// every run, and a certificate in a temporary directory.
	DataDir string

	// Listen are the libp2p listen multiaddrs; default [DefaultListen,
	// DefaultWebTransportListen, DefaultBrowserListen]. /webtransport and
	// /webrtc-direct addresses are what browser light nodes dial
	// (BrowserAddrs).
	Listen []string
	// HTTP is the address of the local web UI, players and API;
	// default DefaultHTTP.
	HTTP string
	// HTTPS serves the go-live page and its WHIP endpoint over TLS, and
	// nothing else: the broadcaster page on a phone needs it (browsers give
	// the camera only to secure origins). Default DefaultHTTPS, this
	// machine only; a phone on the LAN needs an address it reaches
	// (":8443"). NoHTTPS turns it off.
	HTTPS   string
	NoHTTPS bool
	// CertFile and KeyFile name a certificate to use instead of the
	// self-signed one.
	CertFile, KeyFile string
	// HostNames are the names the web servers answer to besides localhost
	// and their own addresses (a node reached by a name: a proxy, DNS). A
	// request for any other Host is refused: that is what DNS rebinding
	// sends (internal/localapi).
	HostNames []string

	// Upload is the upload budget in bit/s that this node gives to relaying;
	// default DefaultUpload. Slots = Upload ÷ (bitrate × Headroom).
	Upload int64
	// Bitrate is the stream bitrate assumed before a broadcast reports its
	// own; default DefaultBitrate.
	Bitrate int64
	// Headroom keeps part of the upload unused (mesh.SlotsFor); default 1.5.
	Headroom float64
	// Slots, when positive, fixes the child slots whatever the upload;
	// NoRelay offers none.
	Slots int

	// Mesh tunes the tree's timing (zero fields: mesh.DefaultConfig); its
	// Self, Root, Broadcast, Key, Slots and Rand are set by the node.
	Mesh mesh.Config
	// AnnounceInterval is how often a viewer asks for a newer announcement;
	// default DefaultAnnounceInterval.
	AnnounceInterval time.Duration
	// MaxWatching bounds the broadcasts the node watches at once (Watch
	// past it is ErrTooMany; those it roots do not count); default
	// DefaultMaxWatching.
	MaxWatching int
	// WHIPUDPPort carries every WHIP session on one UDP port (0: one
	// ephemeral port per session).
	WHIPUDPPort int

	// Bootstrap are the HTTP URLs of community bootstraps
	// (http://boot.example:8090): the node believes the identity
	// attestations their keys sign, holds its own attestation from the
	// first (after signing in there), lists the broadcasts it roots in the
	// first one's directory and serves that directory at /directory/.
	Bootstrap []string
	// DirectoryInterval is how often a broadcaster re-announces its
	// broadcast to the directory; default DefaultDirectoryInterval.
	DirectoryInterval time.Duration
	// TrustRefresh is how often the bootstraps' keys and revocations are
	// read again; running chat rooms take them at once (a revocation
	// reaches them within it). Default community.DefaultTrustRefresh.
	TrustRefresh time.Duration
	// OnLive, when set, hears when an account this node's account follows
	// goes live (the bootstraps' go-live notices over GossipSub, from
	// BootstrapPeers). It must not block.
	OnLive func(*api.Listing)
	// OnReminder, when set, hears the reminders of scheduled broadcasts of
	// accounts this node's account follows (from its bootstraps, over
	// GossipSub, as OnLive). It must not block.
	OnReminder func(api.Reminder)

	// BootstrapPeers are the community bootstraps this node trusts to get
	// through NAT: it stays connected to them, asks them whether it is
	// reachable (AutoNAT), and, if it is not, reserves a slot on their
	// circuit relays and advertises the /p2p-circuit addresses (nat.go).
	// Empty, they are asked of the Bootstrap URLs (/api/v1/info).
	BootstrapPeers []peer.AddrInfo
	// NATWait bounds how long New waits, with BootstrapPeers, to learn how
	// the node is reached; default nat.DefaultWait, negative: no wait. A
	// node with Slots NoRelay never waits.
	NATWait time.Duration
	// BootstrapRedial is how often a lost bootstrap is dialled again;
	// default nat.DefaultRedial.
	BootstrapRedial time.Duration
	// Reachability, when not unknown, is taken as fact instead of asking
	// AutoNAT (private: always reserve relay slots).
	Reachability network.Reachability

	// NoReplays opts out of keeping replays: this node stores no chunk for
	// later and serves none to replay viewers.
	NoReplays bool
	// ReplayQuota bounds the bytes of replay chunks kept (the oldest
	// replays go first); default replay.DefaultQuota, or replay.LightQuota
	// for a node that relays to nobody (Slots NoRelay).
	ReplayQuota int64
	// ReplayTTL is how long a replay lives after its broadcast ended;
	// default replay.DefaultTTL (24 h).
	ReplayTTL time.Duration
	// Clock is the node's one clock: capture times, latencies, versions,
	// replay expiry, the pace of its loops; default the system's. Tests
	// move it 24 hours at once.
	Clock clock.Clock

	// Attestation is this node's identity (identity.Attestation, as
	// marshalled) from a bootstrap it signed in with: its comments and
	// presence carry it, and other nodes show its handle and avatar. Nil:
	// it chats anonymously.
	Attestation []byte
	// TrustedKeys are the bootstrap keys whose attestations this node
	// believes; a sender with none of theirs is shown as anonymous.
	TrustedKeys []ed25519.PublicKey

	// Private is what private broadcasts need: the mailbox their keys
	// wait in, this device's audience key (private.go).
	Private PrivateConfig

	// HostOptions are appended to the libp2p host's options, after the
	// node's own: what a test puts under the node (TestPrivateWire wraps
	// the security transport to record what the connections carry). A
	// libp2p.Security here replaces the default ones.
	HostOptions []libp2p.Option

	// Logger; default: discard.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Listen == nil {
		c.Listen = []string{DefaultListen, DefaultWebTransportListen, DefaultBrowserListen}
	}
	if c.HTTP == "" {
		c.HTTP = DefaultHTTP
	}
	if c.HTTPS == "" {
		c.HTTPS = DefaultHTTPS
	}
	if c.Upload == 0 {
		c.Upload = DefaultUpload
	}
	if c.Bitrate == 0 {
		c.Bitrate = DefaultBitrate
	}
	if c.Headroom == 0 {
		c.Headroom = DefaultHeadroom
	}
	if c.AnnounceInterval == 0 {
		c.AnnounceInterval = DefaultAnnounceInterval
	}
	if c.MaxWatching == 0 {
		c.MaxWatching = DefaultMaxWatching
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DirectoryInterval <= 0 {
		c.DirectoryInterval = DefaultDirectoryInterval
	}
	if c.NATWait == 0 {
		c.NATWait = nat.DefaultWait
	}
	if c.BootstrapRedial <= 0 {
		c.BootstrapRedial = nat.DefaultRedial
	}
	c.Clock = clock.OrSystem(c.Clock)
	if err := c.Private.fill(); err != nil {
		return err
	}
	switch {
	case c.ReplayQuota < 0 || c.ReplayTTL < 0:
		return fmt.Errorf("%w: negative replay quota or TTL", ErrConfig)
	case c.Upload < 0:
		return fmt.Errorf("%w: negative upload %d", ErrConfig, c.Upload)
	case c.Bitrate < 0:
		return fmt.Errorf("%w: negative bitrate %d", ErrConfig, c.Bitrate)
	case c.Headroom < 1:
		return fmt.Errorf("%w: headroom %.2f below 1", ErrConfig, c.Headroom)
	case c.Slots < NoRelay:
		return fmt.Errorf("%w: slots %d", ErrConfig, c.Slots)
	case c.AnnounceInterval < 0:
		return fmt.Errorf("%w: negative announce interval", ErrConfig)
	case c.MaxWatching < 0:
		return fmt.Errorf("%w: negative MaxWatching", ErrConfig)
	case c.WHIPUDPPort < 0 || c.WHIPUDPPort > 65535:
		return fmt.Errorf("%w: WHIP UDP port %d", ErrConfig, c.WHIPUDPPort)
	case c.Reachability > network.ReachabilityPrivate || c.Reachability < 0:
		return fmt.Errorf("%w: reachability %d", ErrConfig, c.Reachability)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return fmt.Errorf("%w: a certificate file needs its key file and the other way round", ErrConfig)
	}
	return nil
}

// slotsFor returns the child slots for a stream of the given bitrate.
func (c *Config) slotsFor(bitrate int64) int {
	switch {
	case c.Slots == NoRelay:
		return 0
	case c.Slots > 0:
		return c.Slots
	}
	if bitrate <= 0 {
		bitrate = c.Bitrate
	}
	return mesh.SlotsFor(c.Upload, bitrate, c.Headroom)
}

// Node is one Peerscope peer: a libp2p host, the broadcasts it takes part in
// (as their broadcaster or as a viewer), and the local web server that plays
// them. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	clock clock.Clock
	host  host.Host
	key   crypto.PrivKey
	// community is the node's side of its bootstraps (directory.go); set
	// before the HTTP servers start.
	community *community.Community
	owner     string // OwnerToken
	// guard decides who may drive the web servers (internal/localapi):
	// Host and Origin checks, the page token, the security headers.
	guard *localapi.Guard
	// chatStreams and dirStreams cap the event streams one client holds:
	// the chats' (across broadcasts) and the directory's.
	chatStreams, dirStreams *httpserve.PerClient

	// ctx is the node's root context: every background loop of the node
	// runs under it (in wg) and ends when Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	httpLn, httpsLn   net.Listener
	httpSrv, httpsSrv *http.Server
	cert              *tlscert.Cert
	tmpDir            string // removed by Close
	dirLock           *dirlock.Lock
	certNames         []string // a real certificate's names (Config.CertFile), which the web servers answer to
	metrics           *metrics
	mux               *http.ServeMux

	mu         sync.Mutex
	closed     bool
	broadcasts map[string]*Broadcast
	order      []*Broadcast  // in the order they were added
	whip       *whip.Handler // made for the first broadcast that takes WHIP

	// ps is the node's one GossipSub router: every broadcast's chat room
	// is a topic on it.
	ps *pubsub.PubSub
	// private: the private chat topics, for ps's peer filter (privchat.go).
	private privateTopics
	// bootMailbox: Config.Private.Mailbox is the first bootstrap's
	// (community.Mailbox), which needs the broadcaster signed in there.
	bootMailbox bool
	nat         *nat.Traversal // reachability, and the bootstraps kept connected
	// signal is the circuit relay that browser light nodes reserve on, to
	// be reached by other browsers (browsers.go).
	signal *relay.Relay

	// The replays (replay.go): the store (nil with NoReplays), bitswap
	// serving it and fetching, the swarm answering the replay protocol.
	store     *replay.Store
	replayTmp string // removed by Close
	bitswap   *bitswap.Bitswap
	swarm     *swarm.Swarm

	closeOnce sync.Once
}

// New starts a node: its libp2p host, and its HTTP (and HTTPS) server. ctx
// bounds the start only; Close stops the node.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger,
		clock:      cfg.Clock,
		broadcasts: map[string]*Broadcast{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if cfg.DataDir != "" {
		// Before anything in it is read: a second node from one directory
		// would share its identity and wait on its replay store.
		if n.dirLock, err = dirlock.Acquire(cfg.DataDir); errors.Is(err, dirlock.ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, cfg.DataDir)
		} else if err != nil {
			return nil, err
		}
	}
	if n.key, err = loadIdentity(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(cfg.BootstrapPeers) == 0 && len(cfg.Bootstrap) > 0 {
		cfg.BootstrapPeers = community.PeersFromInfo(ctx, cfg.Bootstrap, n.log)
		n.cfg.BootstrapPeers = cfg.BootstrapPeers
	}
	if n.host, err = n.newHost(); err != nil {
		return nil, err
	}
	n.log = n.log.With("node", shortPeer(n.host.ID()))
	if err := n.startSignalRelay(); err != nil {
		return nil, err
	}
	if err := n.ensureDeviceKey(); err != nil {
		return nil, err
	}
	if err := n.openReplay(n.ctx); err != nil {
		return nil, err
	}
	n.host.SetStreamHandler(announce.ProtocolID, func(s network.Stream) {
		p := s.Conn().RemotePeer()
		announce.Serve(s, func(id string) (announce.Signed, bool) { return n.announcementFor(p, id) })
	})
	if n.ps, err = pubsub.NewGossipSub(n.ctx, relayedOK{n.host},
		append(chat.PubSubOptions(), pubsub.WithPeerFilter(n.chatPeerFilter),
			pubsub.WithSubscriptionFilter(chatSubFilter{n}))...); err != nil {
		return nil, fmt.Errorf("node: GossipSub: %w", err)
	}
	n.owner = publish.NewStreamKey()
	if n.certNames, err = certNames(cfg); err != nil {
		return nil, err
	}
	n.guard = localapi.New(localapi.Config{Names: append(slices.Clone(cfg.HostNames), n.certNames...), Open: isWHIP})
	n.chatStreams = httpserve.NewPerClient(web.DefaultStreamsPerClient)
	n.dirStreams = httpserve.NewPerClient(DefaultDirectoryStreamsPerClient)
	n.metrics = newMetrics(n)
	n.mux = n.routes()

	if n.nat, err = nat.Start(ctx, n.host, n.natConfig()); err != nil {
		return nil, err
	}
	if err := n.startCommunity(ctx); err != nil {
		return nil, err
	}
	for _, p := range swarm.Protocols {
		n.host.SetStreamHandler(p, n.swarm.Serve)
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	n.log.Info("node started", "peer", n.host.ID(), "http", n.HTTPURL(), "https", n.HTTPSURL())
	return n, nil
}

// newHost makes the node's libp2p host: its key, listen addresses and
// transports, NAT traversal and resource limits.
func (n *Node) newHost() (host.Host, error) {
	h, err := libp2p.New(append([]libp2p.Option{
		libp2p.Identity(n.key),
		libp2p.ListenAddrStrings(n.cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		// WebRTC-direct: what a browser light node dials (web/peer). Its
		// DTLS certificate is derived from the host key, so the /certhash
		// in the address stays the same across restarts.
		libp2p.Transport(webrtc.New),
		// WebTransport: what a browser light node dials first, its
		// handshake a QUIC one (no ICE, whose slow nomination now and then
		// held a WebRTC-direct set-up a second or two: docs/ARCHITECTURE.md).
		// It shares QUIC's listeners; its certificates are derived from
		// the host key and rotate, the address carrying their hashes.
		libp2p.Transport(webtransport.New),
		// The node's own /metrics has what matters; libp2p's would go to
		// the global Prometheus registry.
		libp2p.DisableMetrics(),
		// libp2p's resource manager with a service for each protocol of
		// ours: per-peer stream caps and charged frames.
		p2plimit.Option(),
	}, append(nat.Options(n.natConfig()), n.cfg.HostOptions...)...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: libp2p host: %w", ErrConfig, err)
	}
	return h, nil
}

// listen starts the HTTP server and, unless NoHTTPS, the HTTPS one with
// its certificate.
func (n *Node) listen() (err error) {
	cfg := &n.cfg
	if n.httpLn, err = net.Listen("tcp", cfg.HTTP); err != nil {
		return &ListenError{Server: "HTTP", Addr: cfg.HTTP, Err: err}
	}
	n.httpSrv = n.serve(n.httpLn, localapi.Headers(n.guard.Handler(n.mux)))
	if cfg.NoHTTPS {
		return nil
	}
	dir := ""
	if cfg.DataDir != "" {
		dir = filepath.Join(cfg.DataDir, "tls")
	} else if cfg.CertFile == "" {
		if n.tmpDir, err = os.MkdirTemp("", "peerscope-tls-"); err != nil {
			return err
		}
		dir = n.tmpDir
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if n.cert, err = tlscert.Load(tlscert.Config{Dir: dir, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPS)
	if err != nil {
		return &ListenError{Server: "HTTPS", Addr: cfg.HTTPS, Err: err}
	}
	n.httpsLn = tls.NewListener(ln, n.cert.TLSConfig())
	n.httpsSrv = n.serve(n.httpsLn, localapi.Headers(n.guard.Handler(n.secureRoutes())))
	return nil
}

// serve serves h on ln with the bounds every web server of the node keeps
// (internal/httpserve: header, body, write and idle timeouts, small bodies).
func (n *Node) serve(ln net.Listener, h http.Handler) *http.Server {
	srv := httpserve.New(h, httpserve.DefaultConfig(), n.log)
	n.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("HTTP server stopped", "addr", ln.Addr(), "err", err)
		}
	})
	return srv
}

// loadIdentity reads the identity key from dir, making it on first use, or
// makes an ephemeral one when dir is empty.
func loadIdentity(dir string) (crypto.PrivKey, error) {
	path := ""
	if dir != "" {
		path = filepath.Join(dir, IdentityFile)
	}
	k, err := p2pkey.Load(path)
	if errors.Is(err, p2pkey.ErrBadKey) {
		return nil, fmt.Errorf("%w: identity: %w", ErrConfig, err)
	}
	return k, err
}

// ID returns the node's libp2p peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Addrs returns where other nodes reach this one: its addresses with
// /p2p/<peer ID>.
func (n *Node) Addrs() []ma.Multiaddr {
	info := peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
	out, _ := peer.AddrInfoToP2pAddrs(&info)
	return out
}

// Handler returns the node's HTTP handler (what its HTTP server serves,
// behind the same Host, Origin and token checks), for an application that
// serves it itself.
func (n *Node) Handler() http.Handler { return localapi.Headers(n.guard.Handler(n.mux)) }

// APIToken returns the page token: what the node's pages, served to this
// machine, send in the Peerscope-Token header with everything that acts in
// the node's name (a comment, a heart, a join, a sign-in), and what a
// program on this machine sends to do the same.
func (n *Node) APIToken() string { return n.guard.Token() }

// HTTPAddr returns the address the HTTP server listens on.
func (n *Node) HTTPAddr() net.Addr { return n.httpLn.Addr() }

// HTTPSAddr returns the address the HTTPS server listens on (nil without
// HTTPS).
func (n *Node) HTTPSAddr() net.Addr {
	if n.httpsLn == nil {
		return nil
	}
	return n.httpsLn.Addr()
}

// HTTPURL returns the base URL of the node's web UI on this machine
// ("http://127.0.0.1:8080").
func (n *Node) HTTPURL() string {
	if n.httpLn == nil {
		return ""
	}
	return "http://" + localHostPort(n.httpLn.Addr(), false)
}

// HTTPSURL returns the base URL of the HTTPS server, with the machine's LAN
// address when it listens on every interface (what a phone on the LAN
// opens), or "" without HTTPS.
func (n *Node) HTTPSURL() string {
	if n.httpsLn == nil {
		return ""
	}
	return "https://" + localHostPort(n.httpsLn.Addr(), true)
}

// TLSFingerprint returns the SHA-256 fingerprint of the HTTPS certificate,
// as browsers show it ("" without HTTPS).
func (n *Node) TLSFingerprint() string {
	if n.cert == nil {
		return ""
	}
	return n.cert.Fingerprint
}

// Broadcasts returns the broadcasts this node takes part in, in the order
// they were added.
func (n *Node) Broadcasts() []*Broadcast {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.order)
}

// Lookup returns the broadcast with the given ID, or nil.
func (n *Node) Lookup(id string) *Broadcast { return n.lookup(id) }

func (n *Node) lookup(id string) *Broadcast {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.broadcasts[id]
}

// add registers a broadcast, refusing a second one with the same ID, and
// one more to watch than Config.MaxWatching.
func (n *Node) add(b *Broadcast) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if n.broadcasts[b.id] != nil {
		return fmt.Errorf("%w: %s", ErrJoined, b.id)
	}
	if !b.root {
		if err := n.roomToWatchLocked(); err != nil {
			return err
		}
	}
	if b.streamKey != "" && n.byKeyLocked(b.streamKey) != nil {
		return fmt.Errorf("%w: another broadcast on this node takes that stream key", ErrConfig)
	}
	n.broadcasts[b.id] = b
	n.order = append(n.order, b)
	return nil
}

// byKeyLocked returns the broadcast whose publishers give key, or nil. It
// compares key with every broadcast's, each in constant time
// (localapi.Equal over digests), and never stops at a match: how long it
// takes says nothing about how much of a guessed key was right.
func (n *Node) byKeyLocked(key string) *Broadcast {
	var found *Broadcast
	for _, b := range n.order {
		if b.streamKey != "" && localapi.Equal(key, b.streamKey) && found == nil {
			found = b
		}
	}
	return found
}

// roomToWatch says whether the node may watch one more broadcast.
func (n *Node) roomToWatch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.roomToWatchLocked()
}

func (n *Node) roomToWatchLocked() error {
	watching := 0
	for _, b := range n.order {
		if !b.root {
			watching++
		}
	}
	if watching >= n.cfg.MaxWatching {
		return fmt.Errorf("%w: %d already (close one first)", ErrTooMany, watching)
	}
	return nil
}

func (n *Node) remove(b *Broadcast) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.broadcasts[b.id] == b {
		delete(n.broadcasts, b.id)
		n.order = slices.DeleteFunc(n.order, func(x *Broadcast) bool { return x == b })
	}
}

// natConfig is the NAT traversal's part of the config (package nat).
func (n *Node) natConfig() nat.Config {
	c := &n.cfg
	return nat.Config{Bootstraps: c.BootstrapPeers, Reachability: c.Reachability, Relays: c.Slots != NoRelay,
		Wait: c.NATWait, Redial: c.BootstrapRedial, Clock: n.clock, Logger: n.log}
}

// Reachability returns what the node knows of its reachability from the
// internet: public, private (behind NAT: reached through relays), or
// unknown (no bootstrap has told it yet).
func (n *Node) Reachability() network.Reachability {
	if n.nat == nil {
		return n.cfg.Reachability
	}
	return n.nat.Reachability()
}

// RelayAddrs returns the node's /p2p-circuit addresses (empty unless it
// holds a relay reservation).
func (n *Node) RelayAddrs() []ma.Multiaddr { return nat.RelayAddrs(n.host) }

// PathTo returns how this node is connected to p: directly when any of its
// connections to p is direct.
func (n *Node) PathTo(p peer.ID) nat.Path { return nat.PathTo(n.host, p) }

// announcement returns the newest verified announcement of a broadcast this
// node takes part in: what it answers on announce.ProtocolID.
func (n *Node) announcement(id string) (announce.Signed, bool) {
	if b := n.lookup(id); b != nil {
		return b.signed()
	}
	return announce.Signed{}, false
}

// announcementFor is the announcement answered to peer p: none of a
// private broadcast's to a peer outside its roster (its title is the
// audience's business).
func (n *Node) announcementFor(p peer.ID, id string) (announce.Signed, bool) {
	if b := n.lookup(id); b != nil && b.gate != nil && !b.gate.member(p) {
		return announce.Signed{}, false
	}
	return n.announcement(id)
}

func shortPeer(id peer.ID) string {
	s := id.String()
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}
