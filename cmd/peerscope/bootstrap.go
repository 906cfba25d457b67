//go:build !light

package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// runBootstrap parses the flags into a bootstrap.Config and runs the
// daemon (bootstrap.Daemon: libp2p host, GossipSub, HTTP service) until
// ctx ends.
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
the --relay-* flags. The relay serves peers signed in at this bootstrap
(--open-relay: any peer), a few per network.

State lives under --data: the libp2p identity, the SQLite database
(bootstrap.db, unless --db names a PostgreSQL database) and the attestation keys (attestation-keys.json;
--rotate-key retires the current key and makes a new one, and nodes keep
believing what the old one issued before the rotation; --revoke-key revokes
one that leaked). With --db postgres://… the keys live in the database
instead, shared by every bootstrap on it (replicas: one community behind one
name): the first one started imports its key file (or makes new keys), the
others take the database's, and --rotate-key and --revoke-key with --db
change them for all. The database then holds secrets. Replicas on one
database also find each other there: each records its libp2p addresses, and
connects to and routes through the others (no --peer needed between them);
/api/v1/info lists them all. --revoke-attestation, --revoke-peer and --revoke-account
withdraw badges before they expire: nodes hear it from the signed trust
statement they read every refresh interval. A running bootstrap picks all of
these up by itself.

Twitter: register an app with X, set its callback to
<public URL>/api/v1/auth/twitter/callback, and pass --twitter-client-id (and
the secret in the environment variable PEERSCOPE_TWITTER_SECRET). For local
setups, --twitter-standin serves a stand-in provider under /x/ on the same
address and signs everyone in as a test user.

Federation: --federate URL (repeatable) lists the public live broadcasts of
another community's bootstrap beside this one's, marked with where they come
from. Its URL is https://…, or http://…#pin=FINGERPRINT (the fingerprint its
operator publishes), or loopback; every entry is checked against its
broadcaster's own signature and refused if it does not verify. Any bootstrap
exports its own public live listings for others at
/api/v1/federation/broadcasts; what it reads from others it never exports.

Phone: codes are printed (--sms console, the default; the number masked) or are POSTed as
JSON {"to","message"} to an SMS gateway (--sms https://gateway/…, with the
bearer token in PEERSCOPE_SMS_TOKEN).`)
	cfg := bootstrap.DefaultConfig()
	f := addBootstrapFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bootstrap", "unexpected argument %q", fs.Arg(0))
	}
	if err := f.apply(&cfg); err != nil {
		return usagef("bootstrap", "%v", err)
	}
	if done, err := f.revoke(ctx, cfg.DataDir, cfg.DB); done {
		return err
	}
	if *f.rotate {
		if cfg.DataDir == "" && cfg.DB == "" {
			return usagef("bootstrap", "--rotate-key needs --data (or --db postgres://…): the keys to rotate live there")
		}
		k, err := bootstrap.RotateKeyRingAt(ctx, cfg.DataDir, cfg.DB, time.Now(), nil)
		if err != nil {
			return err
		}
		cur, _ := k.KeySet().Current()
		fmt.Printf("New attestation key %x; %d retired. Running bootstraps on these keys take it up by themselves.\n", []byte(cur.Public), len(k.KeySet().Keys)-1)
		return nil
	}
	d, err := bootstrap.NewDaemon(cfg)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// bootstrapFlags are the flags of `peerscope bootstrap` that do not write
// into the config directly.
type bootstrapFlags struct {
	listen, peers, sms, proxies *string
	twID, twAuthorize, twToken  *string
	twAPI                       *string
	relayData                   byteSize
	standin, rotate, noLimits   *bool
	noRelay, verbose, openRelay *bool
	revokeKey, revokeAtt        *string
	revokeAccount, revokePeer   *string
	reason                      *string
}

// revoke carries out the --revoke-* flags, if any is given, and reports
// whether one was (the command then exits).
func (f *bootstrapFlags) revoke(ctx context.Context, dir, db string) (bool, error) {
	r := bootstrap.Revoke{Attestation: *f.revokeAtt, Account: *f.revokeAccount, Peer: *f.revokePeer, Reason: *f.reason}
	if *f.revokeKey == "" && r == (bootstrap.Revoke{Reason: r.Reason}) {
		return false, nil
	}
	if dir == "" && db == "" {
		return true, usagef("bootstrap", "--revoke-… needs --data (or --db postgres://…): the bootstrap's keys and database live there")
	}
	if *f.revokeKey != "" {
		pub, err := hex.DecodeString(*f.revokeKey)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return true, usagef("bootstrap", "--revoke-key: want the key's 64 hex digits, as 'Attestation key:' prints it")
		}
		k, err := bootstrap.RevokeKeyAt(ctx, dir, db, pub, time.Now(), nil)
		if err != nil {
			return true, err
		}
		cur, _ := k.KeySet().Current()
		fmt.Printf("Key %x revoked: nothing it signed is believed once nodes read the trust statement again.\nCurrent attestation key: %x\n", pub, []byte(cur.Public))
		return true, nil
	}
	if db == "" {
		if dir == "" {
			return true, usagef("bootstrap", "--revoke-… needs --data or --db: the bootstrap's database lives there")
		}
		db = filepath.Join(dir, bootstrap.DBFile)
	}
	if err := bootstrap.RevokeIn(ctx, db, r, time.Now()); err != nil {
		return true, err
	}
	fmt.Println("Revoked; nodes hear it when they read the trust statement again (within their refresh interval).")
	return true, nil
}

// addBootstrapFlags defines the flags, their defaults taken from cfg, and
// binds those that are plain fields of cfg.
func addBootstrapFlags(fs *flag.FlagSet, cfg *bootstrap.Config) *bootstrapFlags {
	f := &bootstrapFlags{
		listen:        fs.String("listen", strings.Join(cfg.Host.Listen, ","), "libp2p listen multiaddrs, comma-separated"),
		peers:         fs.String("peer", "", "other bootstraps to join the DHT with: multiaddrs ending in /p2p/<ID>, comma-separated"),
		rotate:        fs.Bool("rotate-key", false, "retire the attestation key, make a new one, and exit"),
		revokeKey:     fs.String("revoke-key", "", "revoke an attestation key (hex; it leaked): nothing it signed is believed any more; the current key is rotated first. Then exit"),
		revokeAtt:     fs.String("revoke-attestation", "", "revoke one attestation by its ID, and exit"),
		revokeAccount: fs.String("revoke-account", "", "end every session of an account (provider:subject) and revoke its attestations, and exit"),
		revokePeer:    fs.String("revoke-peer", "", "end a node's session (its peer ID) and revoke its attestations, and exit"),
		reason:        fs.String("reason", "", "why, kept with a --revoke-… (for the operator's records)"),
		twID:          fs.String("twitter-client-id", "", "X (Twitter) OAuth 2.0 client ID; empty: no Twitter sign-in"),
		twAuthorize:   fs.String("twitter-authorize-url", bootstrap.DefaultTwitterAuthorizeURL, "OAuth 2.0 authorize endpoint"),
		twToken:       fs.String("twitter-token-url", bootstrap.DefaultTwitterTokenURL, "OAuth 2.0 token endpoint"),
		twAPI:         fs.String("twitter-api-url", bootstrap.DefaultTwitterAPIURL, "API v2 base (users/me, following, tweets)"),
		standin:       fs.Bool("twitter-standin", false, "serve a local stand-in for X under /x/ and sign in against it (local setups)"),
		proxies:       fs.String("trusted-proxy", "", "reverse proxies in front of the API (CIDRs, comma-separated): their X-Forwarded-For names the client the limits count"),
		noLimits:      fs.Bool("no-rate-limits", false, "turn the per-address and per-peer request limits, the caps on live listings and the bound on an account's private-audience bundles off (load tests on loopback)"),
		sms:           fs.String("sms", "console", `where phone codes go: "console" (the log), an SMS gateway's http(s) URL, or "off"`),
		noRelay:       fs.Bool("no-relay", false, "run no circuit relay"),
		openRelay:     fs.Bool("open-relay", false, "give relay reservations to any peer (by default only to peers signed in here)"),
		verbose:       fs.Bool("v", false, "log what the bootstrap does to stderr"),
	}
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "the HTTP API's listen address")
	fs.StringVar(&cfg.Server.PublicURL, "public-url", "", "how browsers and nodes reach the API (default http://<--http>)")
	fs.StringVar(&cfg.DataDir, "data", defaultBootstrapDir(), `directory for the bootstrap's state and identity key ("": a new identity every run)`)
	fs.Func("federate", `list the public live broadcasts of another community's bootstrap beside this one's, each checked against its broadcaster's signature (repeatable): https://…, http://…#pin=FINGERPRINT, or loopback`, func(v string) error {
		if _, _, err := api.ParseBootstrapURL(v); err != nil {
			return err
		}
		cfg.Server.Federation.Peers = append(cfg.Server.Federation.Peers, v)
		return nil
	})
	fs.StringVar(&cfg.DB, "db", "", `the bootstrap's database: a PostgreSQL URL, postgres://user@host:port/database?sslmode=… (the password in PGPASSWORD rather than on the command line; the schema is made or upgraded at start); "": SQLite, bootstrap.db under --data`)
	fs.IntVar(&cfg.Server.Replicas, "replicas", 0, "how many bootstrap processes serve this community from one --db PostgreSQL database, behind one --public-url and with one identity key (each allows its share of the rate limits); 0 or 1: this one alone")
	r := &cfg.Host.Relay
	f.relayData = byteSize(r.CircuitData)
	fs.Var(&f.relayData, "relay-data", `most bytes a relayed circuit carries each way ("8GiB", "500MB"); a 2.5 Mb/s stream is 1.1 GB an hour`)
	fs.DurationVar(&r.CircuitDuration, "relay-duration", r.CircuitDuration, "longest a relayed circuit lives")
	fs.IntVar(&r.Reservations, "relay-reservations", r.Reservations, "most peers holding a relay reservation at once")
	fs.IntVar(&r.ReservationsPerIP, "relay-per-ip", r.ReservationsPerIP, "most relay reservations from one IP address")
	fs.IntVar(&r.ReservationsPerNetwork, "relay-per-network", r.ReservationsPerNetwork, "most relay reservations from one network (an IPv4 address, an IPv6 /64)")
	fs.IntVar(&r.CircuitsPerPeer, "relay-circuits", r.CircuitsPerPeer, "most relayed circuits to or from one peer")
	fs.StringVar(&cfg.Metrics, "metrics", "", "where Prometheus scrapes the bootstrap (GET /metrics), an address of its own such as 127.0.0.1:9090 (not the API's, which is public); \"\": none")
	fs.DurationVar(&cfg.StatusEvery, "status-every", cfg.StatusEvery, "how often to print what the relay carries (when it changed)")
	return f
}

// apply checks the flags and writes the rest of them into cfg.
func (f *bootstrapFlags) apply(cfg *bootstrap.Config) error {
	h := &cfg.Host
	h.Listen, h.Peers = splitList(*f.listen), splitList(*f.peers)
	h.Relay.CircuitData, h.Relay.Off, h.Relay.Open = int64(f.relayData), *f.noRelay, *f.openRelay
	switch {
	case len(h.Listen) == 0:
		return fmt.Errorf("--listen: no address")
	case cfg.StatusEvery <= 0:
		return fmt.Errorf("--status-every must be positive")
	case h.Relay.CircuitData <= 0:
		return fmt.Errorf("--relay-data must be positive")
	case h.Relay.Reservations <= 0, h.Relay.ReservationsPerIP <= 0, h.Relay.CircuitsPerPeer <= 0, h.Relay.ReservationsPerNetwork <= 0:
		return fmt.Errorf("--relay-reservations, --relay-per-ip, --relay-per-network and --relay-circuits must be positive")
	}
	level := slog.LevelWarn
	if *f.verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Out = os.Stdout
	s := &cfg.Server
	for _, p := range splitList(*f.proxies) {
		pf, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("--trusted-proxy: %q is not a CIDR (10.0.0.0/8)", p)
		}
		s.TrustedProxies = append(s.TrustedProxies, pf)
	}
	if *f.noLimits {
		off := bootstrap.Rate{PerSecond: -1}
		s.RateIP, s.RatePeer, s.RateAccount, s.RatePhone = off, off, off, off
		s.MaxLiveAnonymous, s.MaxLiveAccount = -1, -1
		s.MaxAudienceBytes = -1
	}
	switch sms := *f.sms; {
	case sms == "off":
	case sms == "console":
		s.Phone = bootstrap.ConsoleSender{Out: os.Stdout}
	case strings.HasPrefix(sms, "http://"), strings.HasPrefix(sms, "https://"):
		s.Phone = bootstrap.HTTPSender{URL: sms, Token: os.Getenv("PEERSCOPE_SMS_TOKEN")}
	default:
		return fmt.Errorf("--sms must be console, off or an http(s) URL")
	}
	switch {
	case *f.standin:
		cfg.TwitterStandin = cmp.Or(*f.twID, "peerscope-local")
	case *f.twID != "":
		s.Twitter = bootstrap.TwitterConfig{ClientID: *f.twID, ClientSecret: os.Getenv("PEERSCOPE_TWITTER_SECRET"),
			AuthorizeURL: *f.twAuthorize, TokenURL: *f.twToken, APIURL: *f.twAPI}
	}
	return nil
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
