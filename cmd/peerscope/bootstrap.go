package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/peerscope/peerscope/bootstrap"
)

func runBootstrap(ctx context.Context, args []string) error {
	fs := newFlagSet("bootstrap", "[flags]", `
Runs a community bootstrap node: libp2p bootstrap peer, DHT server and
circuit relay for peers behind NAT, plus the HTTP API for sign-in, identity
attestations, the broadcast directory and private-audience keys.

Nodes are given one of the printed multiaddrs (--bootstrap-peer). Through
it they learn whether they are reachable (AutoNAT), hole-punch each other
(DCUtR) and, when punching fails, reach each other through its relay, whose
circuits are sized for video by the --relay-* flags.`)
	bf := addBootstrapP2PFlags(fs)
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
	h, err := bootstrap.NewHost(ctx, hcfg)
	if err != nil {
		return err
	}
	defer h.Close()
	printBootstrap(os.Stdout, h)
	<-ctx.Done()
	return nil
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
