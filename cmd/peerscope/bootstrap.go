package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/xstandin"
)

// runBootstrap composes the two halves of a bootstrap: the libp2p host
// (bootstrap.NewHost: DHT, AutoNAT, relay) and the HTTP service
// (bootstrap.Open: sign-in, attestations, directory, follows). They share
// the data directory and the logger; the service publishes the host's
// addresses in /api/v1/info.
func runBootstrap(ctx context.Context, args []string) error {
	fs := newFlagSet("bootstrap", "[flags]", `
Runs a community bootstrap node: libp2p bootstrap peer, DHT server and
circuit relay for peers behind NAT, plus the HTTP API for sign-in (Twitter
with OAuth 2.0 + PKCE, or a phone number), identity attestations, the
broadcast directory (its page at the HTTP address) and follows.

Nodes are given one of the printed multiaddrs (--bootstrap-peer) and the
HTTP URL (--bootstrap). Through the host they learn whether they are
reachable (AutoNAT), hole-punch each other (DCUtR) and, when punching fails,
reach each other through its relay, whose circuits are sized for video by
the --relay-* flags.

State lives under --data: the libp2p identity, the SQLite database
(bootstrap.db) and the attestation keys (attestation-keys.json;
--rotate-key retires the current key and makes a new one, and nodes keep
believing what the old one issued before the rotation).

Twitter: register an app with X, set its callback to
<public URL>/api/v1/auth/twitter/callback, and pass --twitter-client-id (and
the secret in the environment variable PEERSCOPE_TWITTER_SECRET). For local
setups, --twitter-standin serves a stand-in provider under /x/ on the same
address and signs everyone in as a test user.

Phone: codes go to the log (--sms console, the default) or are POSTed as
JSON {"to","message"} to an SMS gateway (--sms https://gateway/…, with the
bearer token in PEERSCOPE_SMS_TOKEN).`)
	bf := addBootstrapP2PFlags(fs)
	hf := addBootstrapHTTPFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bootstrap", "unexpected argument %q", fs.Arg(0))
	}
	hcfg, err := bf.config()
	if err != nil {
		return usagef("bootstrap", "%v", err)
	}
	if err := hf.check(); err != nil {
		return usagef("bootstrap", "%v", err)
	}
	dataDir := *bf.data
	if dataDir == "" {
		// No data directory: a throwaway identity, and the HTTP state in a
		// temporary directory.
		tmp, err := os.MkdirTemp("", "peerscope-bootstrap-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	if *hf.rotate {
		k, err := bootstrap.RotateKeyRing(dataDir, time.Now(), nil)
		if err != nil {
			return err
		}
		cur, _ := k.KeySet().Current()
		fmt.Printf("New attestation key %x; %d retired.\n", []byte(cur.Public), len(k.KeySet().Keys)-1)
		return nil
	}
	h, err := bootstrap.NewHost(ctx, hcfg)
	if err != nil {
		return err
	}
	defer h.Close()
	// Go-live notices for followers' nodes, on the host's GossipSub.
	ps, err := pubsub.NewGossipSub(ctx, h.Host())
	if err != nil {
		return fmt.Errorf("bootstrap: GossipSub: %w", err)
	}
	live, err := bootstrap.NewLivePublisher(ps, hcfg.Logger)
	if err != nil {
		return err
	}
	defer live.Close()
	svc, sp, err := hf.open(ctx, dataDir, hcfg.Logger, h, live.Notify)
	if err != nil {
		return err
	}
	if sp != nil {
		svc.Server.Mount("/x/", sp)
	}
	printBootstrap(os.Stdout, h)
	cur, _ := svc.Keys.KeySet().Current()
	fmt.Printf("\nDirectory and HTTP API (--bootstrap): %s\nAttestation key: %x\n", svc.URL(), []byte(cur.Public))
	if sp != nil {
		fmt.Printf("Sign-in with Twitter goes to the local stand-in (%s/x/).\n", svc.URL())
	}
	go printRelayStats(ctx, os.Stdout, h, *bf.every)
	return svc.Serve(ctx)
}

// printRelayStats prints what the relay carries, every so often while it
// changes, until ctx ends.
func printRelayStats(ctx context.Context, w io.Writer, h *bootstrap.Host, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	var last bootstrap.RelayStats
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := h.RelayStats()
		if st == last {
			continue
		}
		last = st
		fmt.Fprintf(w, "%s  relay: %d reservations · %d circuits open (%d opened) · %.1f MB relayed · %d peers connected\n",
			time.Since(start).Truncate(time.Second), st.Reservations, st.Circuits, st.CircuitsOpened, float64(st.Bytes)/1e6, len(h.Host().Network().Peers()))
	}
}

// bootstrapHTTPFlags are the flags of the bootstrap's HTTP service.
type bootstrapHTTPFlags struct {
	http, public, sms, proxies        *string
	twID, twAuthorize, twToken, twAPI *string
	standin, rotate, noLimits         *bool
}

func addBootstrapHTTPFlags(fs *flag.FlagSet) *bootstrapHTTPFlags {
	return &bootstrapHTTPFlags{
		http:        fs.String("http", bootstrap.DefaultHTTP, "the HTTP API's listen address"),
		public:      fs.String("public-url", "", "how browsers and nodes reach the API (default http://<--http>)"),
		rotate:      fs.Bool("rotate-key", false, "retire the attestation key, make a new one, and exit"),
		twID:        fs.String("twitter-client-id", "", "X (Twitter) OAuth 2.0 client ID; empty: no Twitter sign-in"),
		twAuthorize: fs.String("twitter-authorize-url", bootstrap.DefaultTwitterAuthorizeURL, "OAuth 2.0 authorize endpoint"),
		twToken:     fs.String("twitter-token-url", bootstrap.DefaultTwitterTokenURL, "OAuth 2.0 token endpoint"),
		twAPI:       fs.String("twitter-api-url", bootstrap.DefaultTwitterAPIURL, "API v2 base (users/me, following, tweets)"),
		standin:     fs.Bool("twitter-standin", false, "serve a local stand-in for X under /x/ and sign in against it (local setups)"),
		proxies:     fs.String("trusted-proxy", "", "reverse proxies in front of the API (CIDRs, comma-separated): their X-Forwarded-For names the client the limits count"),
		noLimits:    fs.Bool("no-rate-limits", false, "turn the per-address and per-peer request limits off (load tests on loopback)"),
		sms:         fs.String("sms", "console", `where phone codes go: "console" (the log), an SMS gateway's http(s) URL, or "off"`),
	}
}

func (hf *bootstrapHTTPFlags) check() error {
	for _, p := range splitList(*hf.proxies) {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("--trusted-proxy: %q is not a CIDR (10.0.0.0/8)", p)
		}
	}
	switch s := *hf.sms; {
	case s == "off", s == "console", strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"):
		return nil
	default:
		return fmt.Errorf("--sms must be console, off or an http(s) URL")
	}
}

// open opens the HTTP service under dir; with --twitter-standin it also
// returns the stand-in provider to mount.
func (hf *bootstrapHTTPFlags) open(ctx context.Context, dir string, log *slog.Logger, h *bootstrap.Host, onLive func(bootstrap.Event)) (*bootstrap.Service, *xstandin.Provider, error) {
	sc := bootstrap.ServiceConfig{DataDir: dir, HTTP: *hf.http, Server: bootstrap.Config{PublicURL: *hf.public, Logger: log, OnLive: onLive}}
	for _, p := range splitList(*hf.proxies) {
		sc.Server.TrustedProxies = append(sc.Server.TrustedProxies, netip.MustParsePrefix(p))
	}
	if *hf.noLimits {
		off := bootstrap.Rate{PerSecond: -1}
		sc.Server.RateIP, sc.Server.RatePeer, sc.Server.RateAccount, sc.Server.RatePhone = off, off, off, off
	}
	if h != nil {
		sc.Server.PeerInfo = func() (string, []string) {
			var addrs []string
			for _, a := range h.Addrs() {
				addrs = append(addrs, a.String())
			}
			return h.ID().String(), addrs
		}
	}
	switch *hf.sms {
	case "off":
	case "console":
		sc.Server.Phone = bootstrap.ConsoleSender{Logger: log}
	default:
		sc.Server.Phone = bootstrap.HTTPSender{URL: *hf.sms, Token: os.Getenv("PEERSCOPE_SMS_TOKEN")}
	}
	var sp *xstandin.Provider
	switch {
	case *hf.standin:
		id := *hf.twID
		if id == "" {
			id = "peerscope-local"
		}
		sc.Configure = func(publicURL string, c *bootstrap.Config) {
			base := strings.TrimRight(publicURL, "/")
			c.Twitter = bootstrap.TwitterConfig{ClientID: id,
				AuthorizeURL: base + "/x/i/oauth2/authorize", TokenURL: base + "/x/2/oauth2/token", APIURL: base + "/x/2"}
			sp = xstandin.New(xstandin.Config{ClientID: id, RedirectURIs: []string{base + "/api/v1/auth/twitter/callback"}})
			sp.AddUser(xstandin.User{ID: "1000", Username: "localtester", Name: "Local Tester"})
		}
	case *hf.twID != "":
		sc.Server.Twitter = bootstrap.TwitterConfig{ClientID: *hf.twID, ClientSecret: os.Getenv("PEERSCOPE_TWITTER_SECRET"),
			AuthorizeURL: *hf.twAuthorize, TokenURL: *hf.twToken, APIURL: *hf.twAPI}
	}
	svc, err := bootstrap.Open(ctx, sc)
	return svc, sp, err
}

func printBootstrap(w io.Writer, h *bootstrap.Host) {
	fmt.Fprintf(w, "Bootstrap %s is up.\n\nGive nodes one of (--bootstrap-peer):\n", h.ID())
	for _, a := range h.Addrs() {
		fmt.Fprintf(w, "  %s\n", a)
	}
	fmt.Fprint(w, "\nCtrl-C stops it.\n")
}

// bootstrapP2PFlags are the flags of the bootstrap's libp2p host.
type bootstrapP2PFlags struct {
	listen, data, peers *string
	relayData           byteSize
	relay               bootstrap.RelayConfig
	noRelay, verbose    *bool
	every               *time.Duration
}

func addBootstrapP2PFlags(fs *flag.FlagSet) *bootstrapP2PFlags {
	bf := &bootstrapP2PFlags{
		listen: fs.String("listen", strings.Join(bootstrap.DefaultP2PListen, ","), "libp2p listen multiaddrs, comma-separated"),
		data:   fs.String("data", defaultBootstrapDir(), `directory for the bootstrap's state and identity key ("": a new identity every run)`),
		peers:  fs.String("peer", "", "other bootstraps to join the DHT with: multiaddrs ending in /p2p/<ID>, comma-separated"),
	}
	bf.relayData = byteSize(bootstrap.DefaultRelayData)
	fs.Var(&bf.relayData, "relay-data", `most bytes a relayed circuit carries each way ("8GiB", "500MB"); a 2.5 Mb/s stream is 1.1 GB an hour`)
	fs.DurationVar(&bf.relay.CircuitDuration, "relay-duration", bootstrap.DefaultRelayDuration, "longest a relayed circuit lives")
	fs.IntVar(&bf.relay.Reservations, "relay-reservations", bootstrap.DefaultRelayReservations, "most peers holding a relay reservation at once")
	fs.IntVar(&bf.relay.ReservationsPerIP, "relay-per-ip", bootstrap.DefaultRelayReservationsPerIP, "most relay reservations from one IP address")
	fs.IntVar(&bf.relay.CircuitsPerPeer, "relay-circuits", bootstrap.DefaultRelayCircuits, "most relayed circuits to or from one peer")
	bf.noRelay = fs.Bool("no-relay", false, "run no circuit relay")
	bf.verbose = fs.Bool("v", false, "log what the bootstrap does to stderr")
	bf.every = fs.Duration("status-every", time.Minute, "how often to print what the relay carries (when it changed)")
	return bf
}

func (bf *bootstrapP2PFlags) config() (bootstrap.HostConfig, error) {
	cfg := bootstrap.HostConfig{DataDir: *bf.data, Relay: bf.relay}
	cfg.Relay.CircuitData = int64(bf.relayData)
	cfg.Relay.Off = *bf.noRelay
	cfg.Listen = splitList(*bf.listen)
	if len(cfg.Listen) == 0 {
		return cfg, fmt.Errorf("--listen: no address")
	}
	cfg.Peers = splitList(*bf.peers)
	if *bf.every <= 0 {
		return cfg, fmt.Errorf("--status-every must be positive")
	}
	if cfg.Relay.CircuitData <= 0 {
		return cfg, fmt.Errorf("--relay-data must be positive")
	}
	for _, v := range []int{cfg.Relay.Reservations, cfg.Relay.ReservationsPerIP, cfg.Relay.CircuitsPerPeer} {
		if v <= 0 {
			return cfg, fmt.Errorf("--relay-reservations, --relay-per-ip and --relay-circuits must be positive")
		}
	}
	level := slog.LevelWarn
	if *bf.verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func defaultBootstrapDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "peerscope-bootstrap")
}

// byteSize is a size in bytes: a number with an optional unit (B, kB, MB,
// GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	v, err := parseByteSize(s)
	*b = byteSize(v)
	return err
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, e.g. 8GiB or 500MB", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	if f*mult > 1<<62 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(f * mult), nil
}
