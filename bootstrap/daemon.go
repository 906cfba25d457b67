package bootstrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerscope/peerscope/bootstrap/xstandin"
)

// Config configures a bootstrap Daemon: its libp2p host, its HTTP service,
// and what joins them. DefaultConfig is what `peerscope bootstrap` starts
// from; zero fields of Host and Server get their defaults when Run builds
// them.
type Config struct {
	// DataDir holds the state: the libp2p identity (P2PIdentityFile), the
	// database (DBFile) and the attestation keys (KeyFile). Empty: a
	// temporary directory removed when Run returns, so a new identity and
	// an empty directory every run.
	DataDir string
	// DB is the store's database: a PostgreSQL URL (postgres://…), or a
	// SQLite file. Empty: DBFile in DataDir.
	DB string
	// HTTP is the API's listen address; default DefaultHTTP.
	HTTP string
	// Metrics, when set, is where Prometheus scrapes the daemon
	// (GET /metrics): its own address, apart from the API's, which is
	// public. Empty: no metrics served.
	Metrics string
	// Host configures the libp2p side; the daemon sets its DataDir and
	// Logger.
	Host HostConfig
	// Server configures the HTTP API; the daemon opens its Store and Keys
	// under DataDir, fills PeerInfo from the host and hears OnLive (before
	// a hook set here) to publish go-live notices.
	Server ServerConfig
	// TwitterStandin, when not empty, is the client ID of a stand-in for X
	// (package xstandin) that the daemon serves under /x/ and signs in
	// against, for local setups: everyone signs in as one test user.
	TwitterStandin string
	// Out hears what an operator reads: once up, the addresses to give
	// nodes and the API's URL; then, every StatusEvery while it changes,
	// what the relay carries. Nil: nothing is printed.
	Out io.Writer
	// StatusEvery is how often the relay's figures are printed; default a
	// minute.
	StatusEvery time.Duration
	// ReplicaEvery is how often, on PostgreSQL, the daemon records its
	// libp2p peer and addresses in the database and joins the other
	// replicas there (replica_peers.go); default DefaultReplicaEvery.
	ReplicaEvery time.Duration
	// Logger; default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration `peerscope bootstrap` starts
// from: the API on DefaultHTTP, the host's and the server's defaults, the
// relay's figures every minute.
func DefaultConfig() Config {
	return Config{
		HTTP:        DefaultHTTP,
		Host:        DefaultHostConfig(),
		Server:      DefaultServerConfig(),
		StatusEvery: time.Minute,
	}
}

// Daemon is a community bootstrap: the libp2p host (DHT server, AutoNAT,
// circuit relay), a GossipSub router with the go-live publisher on it, and
// the HTTP service (store, keys, API, directory page). Run assembles them,
// serves, and takes them down in the reverse order:
//
//	Run:   host ─► GossipSub ─► live publisher ─► service (keys, store, listener) ─► Ready
//	ctx ends: service (HTTP, event streams, store) ─► live publisher ─► GossipSub ─► host
//
// The service's go-live events go to the publisher (OnLive), which
// publishes them on the host; each part is closed once nothing built after
// it can use it.
type Daemon struct {
	cfg   Config
	ready chan struct{}

	// Set before ready is closed.
	host    *Host
	svc     *Service
	metrics net.Listener // nil without Config.Metrics
}

// NewDaemon checks cfg and returns a daemon to Run.
func NewDaemon(cfg Config) (*Daemon, error) {
	if cfg.HTTP == "" {
		cfg.HTTP = DefaultHTTP
	}
	if cfg.StatusEvery == 0 {
		cfg.StatusEvery = time.Minute
	}
	if cfg.StatusEvery < 0 {
		return nil, fmt.Errorf("%w: negative status interval", ErrConfig)
	}
	if cfg.ReplicaEvery == 0 {
		cfg.ReplicaEvery = DefaultReplicaEvery
	}
	if cfg.ReplicaEvery < 0 || cfg.ReplicaEvery > replicaTTL/3 {
		return nil, fmt.Errorf("%w: replica heartbeat every %s: want it positive and at most %s (a third of the %s a replica unseen still counts)",
			ErrConfig, cfg.ReplicaEvery, replicaTTL/3, replicaTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.Host
	if _, err := hc.fill(); err != nil {
		return nil, err
	}
	// The server's config is checked as Open will see it: with a public
	// URL, which Open derives from the listener when none is given.
	sc := cfg.Server
	if sc.PublicURL == "" {
		sc.PublicURL = "http://" + cfg.HTTP
	}
	if err := sc.fill(); err != nil {
		return nil, err
	}
	return &Daemon{cfg: cfg, ready: make(chan struct{})}, nil
}

// Ready is closed once the daemon listens: from then on ID, Addrs, URL and
// RelayStats may be called. It is never closed if Run fails to
// start.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run starts the daemon, serves until ctx ends, then stops every part in
// the order of ownership. ctx also bounds the start. A Daemon runs once.
func (d *Daemon) Run(ctx context.Context) (err error) {
	cfg := d.cfg
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "peerscope-bootstrap-"); err != nil {
			return fmt.Errorf("bootstrap: data directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	hc := cfg.Host
	hc.DataDir, hc.Logger = dir, cfg.Logger
	// The relay serves the peers signed in here (unless it is open): the
	// store answers, once the service has opened it.
	var signedIn atomic.Pointer[Service]
	if hc.Relay.Attested == nil {
		hc.Relay.Attested = func(p peer.ID) bool {
			svc := signedIn.Load()
			return svc != nil && svc.Server.attested(p)
		}
	}
	h, err := NewHost(ctx, hc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, h.Close()) }()
	// Go-live notices for followers' nodes, on the host's GossipSub.
	psCtx, stopPubSub := context.WithCancel(context.Background())
	defer stopPubSub()
	ps, err := pubsub.NewGossipSub(psCtx, h.Host())
	if err != nil {
		return fmt.Errorf("bootstrap: GossipSub: %w", err)
	}
	live, err := NewLivePublisher(ps, cfg.Logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, live.Close()) }()
	if cfg.Metrics != "" {
		ln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return fmt.Errorf("bootstrap: metrics: listen %s: %w", cfg.Metrics, err)
		}
		d.metrics = ln
		defer ln.Close() // if Run fails to start; after Serve, closed already
	}
	svc, standin, err := d.open(ctx, dir, h, live)
	if err != nil {
		return err
	}
	d.host, d.svc = h, svc
	var metrics *http.Server
	if d.metrics != nil {
		metrics = &http.Server{Handler: d.metricsHandler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	}
	signedIn.Store(svc)
	close(d.ready)
	d.printUp(standin)
	statusCtx, stopStatus := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if cfg.Out != nil {
		wg.Go(func() { d.printRelayStats(statusCtx) })
	}
	if metrics != nil {
		wg.Go(func() { metrics.Serve(d.metrics) })
	}
	err = svc.Serve(ctx) // until ctx ends; then the HTTP server, its streams and the store
	stopStatus()
	if metrics != nil {
		metrics.Close()
	}
	wg.Wait()
	return err
}

// metricsHandler serves the daemon's registry: the server's and the
// host's figures, Go's and the process's.
func (d *Daemon) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.svc.Server.Collectors()...)
	reg.MustRegister(d.host.Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// MetricsURL returns where Prometheus scrapes the daemon (after Ready),
// or "" without Config.Metrics.
func (d *Daemon) MetricsURL() string {
	if d.metrics == nil {
		return ""
	}
	return "http://" + d.metrics.Addr().String() + "/metrics"
}

// open opens the HTTP service under dir, its /api/v1/info naming the
// host and its go-live events published by live; with TwitterStandin it
// mounts the stand-in provider and returns it.
func (d *Daemon) open(ctx context.Context, dir string, h *Host, live *LivePublisher) (*Service, *xstandin.Provider, error) {
	sc := d.cfg.Server
	sc.Logger = cmp.Or(sc.Logger, d.cfg.Logger)
	var replicas *replicaSet // on PostgreSQL; set before Serve
	sc.PeerInfo = func() (string, []string) {
		var addrs []string
		for _, a := range h.Addrs() {
			addrs = append(addrs, a.String())
		}
		if replicas != nil {
			// Each ends in its own /p2p/<ID>: nodes take every one as a
			// bootstrap peer (community.PeersFromInfo).
			addrs = append(addrs, replicas.addrs()...)
		}
		return h.ID().String(), addrs
	}
	hook := sc.OnLive
	sc.OnLive = func(e Event) {
		live.Notify(e)
		if hook != nil {
			hook(e)
		}
	}
	var standin *xstandin.Provider
	configure := func(string, *ServerConfig) {}
	if id := d.cfg.TwitterStandin; id != "" {
		configure = func(publicURL string, c *ServerConfig) {
			base := strings.TrimRight(publicURL, "/")
			c.Twitter = TwitterConfig{ClientID: id,
				AuthorizeURL: base + "/x/i/oauth2/authorize", TokenURL: base + "/x/2/oauth2/token", APIURL: base + "/x/2"}
			standin = xstandin.New(xstandin.Config{ClientID: id, RedirectURIs: []string{base + "/api/v1/auth/twitter/callback"}})
			standin.AddUser(xstandin.User{ID: "1000", Username: "localtester", Name: "Local Tester"})
		}
	}
	svc, err := Open(ctx, ServiceConfig{DataDir: dir, DB: d.cfg.DB, HTTP: d.cfg.HTTP, Server: sc, Configure: configure})
	if err != nil {
		return nil, nil, err
	}
	if standin != nil {
		svc.Server.Mount("/x/", standin)
	}
	if svc.Store.dialect == dialectPostgres {
		replicas = &replicaSet{st: svc.Store, h: h, every: d.cfg.ReplicaEvery, now: time.Now, log: d.cfg.Logger}
		if now := d.cfg.Server.Now; now != nil {
			replicas.now = now
		}
		svc.loops = append(svc.loops, replicas.run)
	}
	return svc, standin, nil
}

// ID returns the daemon's libp2p peer ID (after Ready).
func (d *Daemon) ID() peer.ID { return d.host.ID() }

// Addrs returns the host's addresses with /p2p/<ID>, what nodes are given
// (after Ready).
func (d *Daemon) Addrs() []ma.Multiaddr { return d.host.Addrs() }

// URL returns the HTTP API's base URL (after Ready).
func (d *Daemon) URL() string { return d.svc.URL() }

// Host returns the daemon's libp2p side (after Ready).
func (d *Daemon) Host() *Host { return d.host }

// RelayStats returns what the relay has carried (after Ready).
func (d *Daemon) RelayStats() RelayStats { return d.host.RelayStats() }

// printUp tells the operator what to give nodes.
func (d *Daemon) printUp(standin *xstandin.Provider) {
	w := d.cfg.Out
	if w == nil {
		return
	}
	fmt.Fprintf(w, "Bootstrap %s is up.\n\nGive nodes one of (--bootstrap-peer):\n", d.host.ID())
	for _, a := range d.host.Addrs() {
		fmt.Fprintf(w, "  %s\n", a)
	}
	fmt.Fprint(w, "\nCtrl-C stops it.\n")
	cur, _ := d.svc.Keys.KeySet().Current()
	base := cmp.Or(strings.TrimRight(d.cfg.Server.PublicURL, "/"), d.svc.URL())
	fmt.Fprintf(w, "\nDirectory and HTTP API (--bootstrap): %s\nFingerprint: %s\n  (publish it: nodes that reach this bootstrap over plain http pin it, --bootstrap '%s#pin=%s')\nAttestation key: %x\n",
		d.svc.URL(), d.svc.Keys.ID(), base, d.svc.Keys.ID(), []byte(cur.Public))
	if standin != nil {
		fmt.Fprintf(w, "Sign-in with Twitter goes to the local stand-in (%s/x/).\n", d.svc.URL())
	}
	if u := d.MetricsURL(); u != "" {
		fmt.Fprintf(w, "Metrics (Prometheus): %s\n", u)
	}
}

// printRelayStats prints what the relay carries, every StatusEvery while
// it changes, until ctx ends.
func (d *Daemon) printRelayStats(ctx context.Context) {
	t := time.NewTicker(d.cfg.StatusEvery)
	defer t.Stop()
	start := time.Now()
	var last RelayStats
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := d.host.RelayStats()
		if st == last {
			continue
		}
		last = st
		fmt.Fprintf(d.cfg.Out, "%s  relay: %d reservations · %d circuits open (%d opened) · %.1f MB relayed · %d peers connected\n",
			time.Since(start).Truncate(time.Second), st.Reservations, st.Circuits, st.CircuitsOpened, float64(st.Bytes)/1e6, len(d.host.Host().Network().Peers()))
	}
}
