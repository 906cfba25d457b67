package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/publish"
	"github.com/peerscope/peerscope/media/sample"
	"github.com/peerscope/peerscope/nat"
	"github.com/peerscope/peerscope/node"
	"github.com/peerscope/peerscope/replay"
)

// broadcastHelp is what 'peerscope broadcast --help' says before the flags.
const broadcastHelp = `
Goes live: takes video from SOURCE, cuts it into signed chunks and roots a
relay tree that viewers join with the link it prints. The broadcast ends when
the source ends, when the publisher ends its stream, or on Ctrl-C. Ended by
its source or publisher, it stays up serving the replay through the same
link until Ctrl-C (24 hours at most; --serve-replay=false stops at the end).

SOURCE is one of (whip and rtmp may be given together, comma-separated):
  whip               a browser or OBS publishes over WebRTC (WHIP): open the
                     printed broadcaster page on this PC, or, with
                     --https :8443, on a phone on the same network
  rtmp://[HOST]:PORT an encoder publishes over RTMP, e.g.
                     ffmpeg -re -i in.mp4 -c:v libx264 -g 30 -c:a aac -f flv rtmp://127.0.0.1:1935/live/KEY
  srt://[HOST]:PORT  an encoder sends MPEG-TS over SRT (streamid = the key;
                     ?passphrase=… to encrypt, ?latency=ms)
  udp://[HOST]:PORT  MPEG-TS in UDP datagrams (ffmpeg … -f mpegts udp://127.0.0.1:1234),
                     from the first address that sends only (to restart the
                     encoder, keep its port: …?localport=5000)
  -                  MPEG-TS on stdin (ffmpeg … -f mpegts - | peerscope broadcast --from -)
  sample             the built-in 10 s test clip
  FILE               an MPEG-TS or MP4 file (H.264 with AAC or Opus), played at
                     its own pace; --loop plays it forever

Publishers over WHIP, RTMP and SRT need the stream key (--key, or a new one
printed at start). One publisher at a time; one cut off may come back within
--grace.

A private broadcast (--private, --audience) is seen only by the people you
pick: every chunk and comment is encrypted, the keys are wrapped for their
devices only and left at the --bootstrap (which cannot open them), and only
their nodes get into the relay tree. This node must be signed in at the bootstrap
('peerscope signin' with the same --data and --bootstrap, or its directory page). The people picked
must have signed in there with a node too: a node publishes its device key
when it signs in; someone who does so while you are live is let in within
--audience-every.
  --private @alice,@bob        these accounts (handles, or keys like twitter:1234)
  --audience mutuals           the accounts that follow you and that you follow
  --audience group:NAME        a group saved at the bootstrap (PUT /api/v1/groups/NAME)`

func runBroadcast(ctx context.Context, args []string) error {
	fs := newFlagSet("broadcast", "--from SOURCE [flags]", broadcastHelp)
	title := fs.String("title", "", "the broadcast's title, shown to viewers (a WHIP publisher may set it)")
	where := fs.String("location", "", "put the broadcast on the directory's map: LAT,LON in degrees (48.85,2.35), kept to 0.1° (about 11 km); default: not on the map")
	from := fs.String("from", "", "where the video comes from (see above)")
	loop := fs.Bool("loop", false, "play FILE (or sample) forever")
	key := fs.String("key", "", "stream key publishers must give (default: a new random one)")
	unlisted := fs.Bool("unlisted", false, "keep the broadcast out of the bootstrap's directory (--bootstrap)")
	tweet := fs.Bool("tweet", false, "post the link on your Twitter account when going live (signed in at the --bootstrap, allowing posts)")
	private := fs.String("private", "", "make the broadcast private, for these accounts only: @handles or account keys, comma-separated (needs --bootstrap, signed in)")
	audienceFlag := fs.String("audience", "", `make the broadcast private, for "mutuals" (who follow each other with you) or "group:NAME" (a saved group); with --private, both`)
	audienceEvery := fs.Duration("audience-every", 15*time.Second, "how often a private broadcast looks up its audience's devices again (someone who signs in while you are live gets in)")
	stripes := fs.Int("stripes", 0, "stripe the broadcast: each chunk cut into N fragments and --parity more, each over a tree of its own, a viewer playing with any N (viewers need this version; 0: one tree)")
	parity := fs.Int("parity", 2, "with --stripes: parity fragments a chunk has on top")
	grace := fs.Duration("grace", publish.DefaultGrace, "how long a publisher that was cut off may take to come back before the broadcast ends")
	serveReplay := fs.Bool("serve-replay", true, "when the broadcast ends, stay up and serve its replay through the same link (24 hours, or until Ctrl-C); =false to stop at the end")
	nf := addNodeFlags(fs, nodeDefaults{http: "127.0.0.1:8080", https: "127.0.0.1:8443", listen: "/ip4/0.0.0.0/tcp/0,/ip4/0.0.0.0/udp/0/quic-v1,/ip4/0.0.0.0/udp/0/webrtc-direct", data: defaultDataDir()})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("broadcast", "unexpected argument %q", fs.Arg(0))
	}
	if *from == "" {
		return usagef("broadcast", "say where the video comes from with --from")
	}
	if nf.upload.set && nf.upload.v == 0 {
		return usagef("broadcast", "--upload 0: the broadcaster must feed at least one viewer")
	}
	spec, isPrivate, err := parseAudience(*private, *audienceFlag)
	if err != nil {
		return usagef("broadcast", "%v", err)
	}
	if isPrivate && *audienceEvery <= 0 {
		return usagef("broadcast", "--audience-every must be positive")
	}
	streamKey := *key
	if streamKey == "" {
		streamKey = publish.NewStreamKey()
	}
	bc := node.LiveConfig{Title: *title, StreamKey: streamKey, Grace: *grace, Unlisted: *unlisted, Tweet: *tweet}
	bc.Stripes, bc.Parity = striping(*stripes, *parity)
	if *where != "" {
		l, err := api.ParseLocation(*where)
		if err != nil {
			return usagef("broadcast", "--%v", strings.TrimPrefix(err.Error(), api.ErrBadRequest.Error()+": "))
		}
		if isPrivate {
			return usagef("broadcast", "--location is for the public directory's map; a private broadcast is never listed")
		}
		bc.Location = &l
	}
	var srcInfo []string // how to feed a source that listens
	src, err := parseFrom(*from, *loop, streamKey, &bc, &srcInfo)
	if err != nil {
		return usagef("broadcast", "--from %s: %v", *from, err)
	}
	if closer, ok := src.(io.Closer); ok {
		defer closer.Close()
	}
	bc.Source = src
	cfg, err := nf.config(!bc.WHIP)
	if err != nil {
		return usagef("broadcast", "%v", err)
	}
	if isPrivate && len(cfg.Bootstrap) == 0 {
		return usagef("broadcast", "--private and --audience need --bootstrap URL: the bootstrap knows the accounts and keeps the keys")
	}
	sayNATWait(os.Stdout, cfg)
	n, err := node.New(ctx, cfg)
	if err != nil {
		return startErr(err, cfg, "")
	}
	defer n.Close()
	var b *node.Broadcast
	if isPrivate {
		b, err = goLivePrivate(ctx, n, bc, spec, *audienceEvery, srcInfo, cfg.CertFile != "")
	} else if b, err = n.GoLive(ctx, bc); err == nil {
		printBroadcast(os.Stdout, n, b, srcInfo, cfg.CertFile != "")
	}
	if err != nil {
		return err
	}
	err = follow(ctx, os.Stdout, b, *nf.every)
	if errors.Is(err, context.Canceled) {
		fmt.Println("\nEnding the broadcast…")
	}
	m := b.ReplayManifest() // (before Close, which forgets it; the store keeps it)
	_ = b.Close()
	if err := b.Err(); err != nil {
		return fmt.Errorf("broadcast: the source failed: %w", err)
	}
	if *serveReplay && ctx.Err() == nil && n.ReplayStore() != nil && m != nil {
		serveBroadcastReplay(ctx, os.Stdout, n, b.ID(), m.Ended)
	}
	return nil
}

// serveBroadcastReplay keeps an ended broadcast's node up until ctx ends:
// the broadcaster holds the whole replay and its manifest, so the link it
// printed keeps working (a late 'peerscope watch LINK' plays the replay)
// even when nobody watched live, whose nodes would otherwise be the only
// holders.
func serveBroadcastReplay(ctx context.Context, w io.Writer, n *node.Node, id string, ended time.Time) {
	fmt.Fprintf(w, "Serving the replay until Ctrl-C (24 hours at most): viewers play it with the same link\n"+
		"('peerscope watch LINK'), and it plays here too: %s/r/%s/\n", n.HTTPURL(), id)
	t := time.NewTimer(time.Until(ended.Add(replay.DefaultTTL)))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		fmt.Fprintln(w, "The replay's 24 hours are over.")
	}
}

// parseAudience reads --private and --audience: the accounts, mutuals and
// the group they name, and whether the broadcast is private at all.
func parseAudience(private, audience string) (community.Audience, bool, error) {
	var a community.Audience
	for _, h := range splitList(private) {
		if strings.ContainsAny(h, " \t") {
			return a, false, fmt.Errorf("--private %q: accounts are @handles or keys like twitter:1234, comma-separated", h)
		}
		a.Accounts = append(a.Accounts, h)
	}
	switch {
	case audience == "":
	case audience == "mutuals":
		a.Mutuals = true
	case strings.HasPrefix(audience, "group:"):
		a.Group = strings.TrimPrefix(audience, "group:")
		if err := api.CheckGroupName(a.Group); err != nil {
			return a, false, fmt.Errorf("--audience %s: %v", audience, err)
		}
	default:
		return a, false, fmt.Errorf("--audience %q: want mutuals or group:NAME", audience)
	}
	if private != "" && len(a.Accounts) == 0 {
		return a, false, errors.New("--private: name at least one account (@alice,@bob)")
	}
	return a, private != "" || audience != "", nil
}

// goLivePrivate looks the audience up, goes live for it, prints who may
// watch and has the node look the audience up again every every.
func goLivePrivate(ctx context.Context, n *node.Node, bc node.LiveConfig, spec community.Audience, every time.Duration, srcInfo []string, realCert bool) (*node.Broadcast, error) {
	members, err := resolveAudience(ctx, n, spec)
	if err != nil {
		return nil, err
	}
	bc.Private = &node.Audience{Members: members}
	b, err := n.GoLive(ctx, bc)
	if err != nil {
		return nil, signInHint(n, err)
	}
	printBroadcast(os.Stdout, n, b, srcInfo, realCert)
	printAudience(os.Stdout, members)
	if err := b.KeepAudience(spec, every, func(m []node.Member) {
		fmt.Println("The audience's devices changed:")
		printAudience(os.Stdout, m)
	}); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// resolveAudience looks the audience up at the bootstrap, saying what
// stands in the way: not signed in, an account it does not know.
func resolveAudience(ctx context.Context, n *node.Node, spec community.Audience) ([]node.Member, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	members, err := n.ResolveAudience(rctx, spec)
	switch {
	case errors.Is(err, node.ErrUnknownAccount):
		return nil, fmt.Errorf("broadcast: %w (each must have signed in at the bootstrap once)", err)
	case err != nil:
		return nil, signInHint(n, err)
	}
	return members, nil
}

// signInHint says where to sign in when that is what is missing.
func signInHint(n *node.Node, err error) error {
	if !errors.Is(err, node.ErrNotSignedIn) {
		return err
	}
	return fmt.Errorf("broadcast: %w\n  Sign this node in with 'peerscope signin' and the same --data and --bootstrap (or on the directory page of a node run with them, like %s), then go live again", err, n.DirectoryURL())
}

// printAudience says who may watch, and who cannot yet.
func printAudience(w io.Writer, members []node.Member) {
	var names, waiting []string
	for _, m := range members {
		name := m.Handle
		if name == "" {
			name = m.Account
		}
		names = append(names, name)
		if len(m.Devices) == 0 {
			waiting = append(waiting, name)
		}
	}
	if len(names) == 0 {
		fmt.Fprint(w, "\nPrivate: nobody is in the audience yet.\n")
		return
	}
	fmt.Fprintf(w, "\nPrivate: only %s can watch (the link alone lets nobody in).\n", strings.Join(names, ", "))
	if len(waiting) > 0 {
		fmt.Fprintf(w, "  No device yet for %s: they get in once a node of theirs signs in at the bootstrap.\n", strings.Join(waiting, ", "))
	}
}

// parseFrom turns --from into a source, or into ingest servers on bc.
func parseFrom(from string, loop bool, key string, bc *node.LiveConfig, info *[]string) (media.Source, error) {
	parts := strings.Split(from, ",")
	if len(parts) > 1 {
		for _, p := range parts {
			switch {
			case p == "whip":
				bc.WHIP = true
			case strings.HasPrefix(p, "rtmp://"):
				addr, err := hostPort(p, "rtmp")
				if err != nil {
					return nil, err
				}
				bc.RTMP = addr
			default:
				return nil, fmt.Errorf("only whip and rtmp:// can be combined, not %q", p)
			}
		}
		return nil, nil
	}
	if loop && !isFile(from) {
		return nil, errors.New("--loop plays a file; a live source ends when its publisher does")
	}
	switch {
	case from == "whip":
		bc.WHIP = true
		return nil, nil
	case strings.HasPrefix(from, "rtmp://"):
		addr, err := hostPort(from, "rtmp")
		bc.RTMP = addr
		return nil, err
	case strings.HasPrefix(from, "srt://"):
		u, err := url.Parse(from)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		if q.Get("streamid") == "" {
			q.Set("streamid", key)
		}
		u.RawQuery = q.Encode()
		src, err := ingest.ListenSRTURL(u.String())
		if err != nil {
			return nil, err
		}
		pub := *u
		pub.Host = localAddr(src.Addr())
		*info = append(*info, fmt.Sprintf("SRT (ffmpeg -re -i in.mp4 -c:v libx264 -g 30 -c:a aac -f mpegts '%s')", pub.String()))
		return src, nil
	case strings.HasPrefix(from, "udp://"):
		addr, err := hostPort(from, "udp")
		if err != nil {
			return nil, err
		}
		src, err := ingest.ListenUDP(addr)
		if err != nil {
			return nil, err
		}
		*info = append(*info, fmt.Sprintf("UDP (ffmpeg -re -i in.mp4 -c:v libx264 -g 30 -c:a aac -f mpegts udp://%s)", localAddr(src.Addr())))
		return src, nil
	case from == "-":
		return ingest.NewTS(os.Stdin), nil
	case from == "sample":
		var opts []ingest.Option
		if loop {
			opts = append(opts, ingest.WithLoop())
		}
		return ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), opts...)
	}
	if strings.Contains(from, "://") {
		return nil, errors.New("unknown scheme (want whip, rtmp://, srt://, udp://, - or a file)")
	}
	var opts []ingest.Option
	if loop {
		opts = append(opts, ingest.WithLoop())
	}
	return ingest.OpenFile(from, opts...)
}

func isFile(from string) bool {
	return from == "sample" || (from != "-" && from != "whip" && !strings.Contains(from, "://"))
}

// hostPort returns HOST:PORT from scheme://HOST:PORT (no path).
func hostPort(s, scheme string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != scheme || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("want %s://[HOST]:PORT", scheme)
	}
	return u.Host, nil
}

// localAddr names a bound address the way a client on this machine reaches it.
func localAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// striping is what --stripes and --parity say: no parity without stripes
// (--parity has a default).
func striping(stripes, parity int) (int, int) {
	if stripes == 0 {
		return 0, 0
	}
	return stripes, parity
}

func printBroadcast(w io.Writer, n *node.Node, b *node.Broadcast, srcInfo []string, realCert bool) {
	title := b.Announcement().Title
	if title == "" {
		title = "(untitled)"
	}
	fmt.Fprintf(w, "Broadcast %q is set up.\n\n", title)
	fmt.Fprintf(w, "Share this link; viewers run 'peerscope watch LINK':\n  %s\n\n", b.Link())
	fmt.Fprintf(w, "  Player page:  %s\n", b.URLs().Player)
	fmt.Fprintf(w, "  Moderate:     %s  (the page with chat moderation; this machine only)\n", b.OwnerURL())
	fmt.Fprintf(w, "  LL-HLS:       %s  (VLC, ffplay)\n", b.URLs().HLS)
	if u := n.DirectoryURL(); u != "" {
		fmt.Fprintf(w, "  Directory:    %s  (what is live; sign in there to show your name)\n", u)
	}
	if a := b.Announcement(); a.Stripes > 0 {
		fmt.Fprintf(w, "  Striped:      %d+%d over %d trees: a viewer plays with any %d fragments of %d; nodes older than striping cannot join, and pages play from their node\n",
			a.Stripes, a.Parity, a.Stripes+a.Parity, a.Stripes, a.Stripes+a.Parity)
	}
	if u := b.URLs().BroadcasterPage; u != "" {
		printStudio(w, n, b, realCert)
	}
	if u := b.URLs().RTMP; u != "" {
		fmt.Fprintf(w, "\nRTMP (OBS: Server %s, Stream key %s):\n  %s\n", strings.TrimSuffix(u, "/"+b.StreamKey()), b.StreamKey(), u)
		fmt.Fprintf(w, "  ffmpeg -re -i in.mp4 -c:v libx264 -g 30 -c:a aac -f flv %s\n", u)
	}
	for _, s := range srcInfo {
		fmt.Fprintf(w, "\nWaiting for %s\n", s)
	}
	fmt.Fprint(w, "\nCtrl-C ends the broadcast.\n")
}

// printStudio says where to go live from a browser: the broadcaster page
// at every LAN address when the HTTPS server listens on all of them, with
// a QR code of the first for the phone's camera, and what the phone will
// say of the certificate.
func printStudio(w io.Writer, n *node.Node, b *node.Broadcast, realCert bool) {
	urls := b.URLs()
	pages := urls.BroadcasterPagesLAN
	addr, _ := n.HTTPSAddr().(*net.TCPAddr)
	switch {
	case len(pages) > 0:
		fmt.Fprintf(w, "\nGo live from a browser on a phone on your network (or this PC):\n")
		for _, p := range pages {
			fmt.Fprintf(w, "  %s\n", p)
		}
	default:
		fmt.Fprintf(w, "\nGo live from a browser (phone or PC):\n  %s\n", urls.BroadcasterPage)
		if addr != nil && !addr.IP.IsLoopback() && !addr.IP.IsUnspecified() {
			pages = []string{urls.BroadcasterPage} // the one address it listens on
		}
	}
	switch {
	case addr == nil: // no HTTPS: this machine's browser, over HTTP
	case addr.IP.IsLoopback():
		fmt.Fprintln(w, "  (this machine only: for a phone on your network, start with --https :8443)")
	case len(pages) == 0:
		fmt.Fprintln(w, "  (no network address found on this machine: a phone cannot reach it)")
	}
	if len(pages) > 0 {
		fmt.Fprintln(w, "\n  Scan it with the phone's camera:")
		if err := writeQR(w, pages[0], "  "); err != nil {
			fmt.Fprintf(w, "  (no QR code: %v)\n", err)
		}
	}
	if addr != nil && !realCert {
		fmt.Fprintln(w, `  The phone will warn that the connection is not private: this node's certificate is its own (self-signed). Tap "Advanced", then "Proceed", or give a real one with --tls-cert FILE --tls-key FILE.`)
		if fp := n.TLSFingerprint(); fp != "" {
			fmt.Fprintf(w, "  (its SHA-256 fingerprint, as the browser shows it: %s)\n", fp)
		}
	}
	fmt.Fprintf(w, "  WHIP (OBS):   %s  with bearer token %s\n", urls.WHIP, b.StreamKey())
}

// follow prints a status line every so often until the broadcast ends
// (then it waits a little for the end to reach the viewers) or ctx does.
func follow(ctx context.Context, w io.Writer, b *node.Broadcast, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.Done():
			fmt.Fprintln(w, "\nThe broadcast has ended.")
			if !b.IsBroadcaster() {
				fmt.Fprintln(w, "Local players finish playing; stopping in 10 s (Ctrl-C to stop now).")
			}
			// Let the last chunks and the announcement reach everyone (or
			// the local players play to the end).
			linger := 10 * time.Second
			if b.IsBroadcaster() {
				linger = 3 * time.Second
			}
			select {
			case <-ctx.Done():
			case <-time.After(linger):
			}
			return nil
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := b.Status(sctx)
			cancel()
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "%s  %s\n", time.Since(start).Truncate(time.Second), statusLine(b, st))
		}
	}
}

func statusLine(b *node.Broadcast, st node.TreeStatus) string {
	var s strings.Builder
	if b.IsBroadcaster() {
		fmt.Fprintf(&s, "%d chunks", st.Received)
		if br := b.Announcement().Bitrate; br > 0 {
			fmt.Fprintf(&s, " (%.2f Mb/s)", float64(br)/1e6)
		}
		fmt.Fprintf(&s, " · %d in the tree below", max(int(st.Subtree)-1, 0))
		if p := b.Publishing(); p != "" {
			fmt.Fprintf(&s, " · publisher: %s", p)
		} else {
			s.WriteString(" · waiting for a publisher")
		}
	} else {
		if st.Depth < 0 {
			s.WriteString("joining the tree")
		} else {
			fmt.Fprintf(&s, "depth %d", st.Depth)
		}
		fmt.Fprintf(&s, " · %d chunks · latency %s", st.Received, st.Latency.Round(time.Millisecond))
		if st.ParentPath != nat.PathNone {
			fmt.Fprintf(&s, " · parent %s", st.ParentPath)
		}
	}
	fmt.Fprintf(&s, " · relaying to %d of %d", len(st.Children), st.Slots)
	if st.RelayedChildren > 0 {
		fmt.Fprintf(&s, " (%d through a relay)", st.RelayedChildren)
	}
	return s.String()
}

// sayNATWait says why the start may take a while: with bootstraps, the node
// first learns whether it can be reached, and behind NAT gets a relay
// address (node.Config.NATWait).
func sayNATWait(w io.Writer, cfg node.Config) {
	if (len(cfg.BootstrapPeers) == 0 && len(cfg.Bootstrap) == 0) || cfg.Slots == node.NoRelay || cfg.Reachability != network.ReachabilityUnknown {
		return // a node that relays to nobody only waits to be able to hole-punch
	}
	fmt.Fprintf(w, "Asking the bootstrap whether this machine can be reached (up to %s; behind NAT, about 17 s)…\n", nat.DefaultWait)
}

// --- flags shared by broadcast and watch ---

type nodeDefaults struct{ http, https, listen, data string }

type nodeFlags struct {
	http, https, listen, data *string
	tlsCert, tlsKey           *string // nil without HTTPS
	hostNames                 *string
	bootstrapPeers, bootstrap *string
	reachability              *string
	every                     *time.Duration
	upload                    uploadFlag
	verbose                   *bool
	noReplays                 *bool
}

func addNodeFlags(fs *flag.FlagSet, d nodeDefaults) *nodeFlags {
	nf := &nodeFlags{
		http:   fs.String("http", d.http, "address of the local web server (player pages, LL-HLS, WHEP, /metrics)"),
		listen: fs.String("listen", d.listen, "libp2p listen multiaddrs, comma-separated"),
		data:   fs.String("data", d.data, `directory for the node's identity key and TLS certificate ("": new ones every run)`),
		hostNames: fs.String("host-name", "", `names the web servers answer to besides localhost and their addresses, comma-separated `+
			`(a node reached by name: its certificate's, a proxy's); a request for any other name is refused (DNS rebinding)`),
	}
	if d.https != "" {
		nf.https = fs.String("https", d.https, `address of the HTTPS server, which serves the broadcaster page and WHIP only: this machine by default; a phone on your network needs --https :8443 ("off": none)`)
		nf.tlsCert = fs.String("tls-cert", "", "a real certificate (PEM, the chain) for the HTTPS server, instead of the node's self-signed one: a node reached by a name (with --tls-key)")
		nf.tlsKey = fs.String("tls-key", "", "the private key (PEM) of --tls-cert")
	}
	nf.upload.v = node.DefaultUpload
	fs.Var(&nf.upload, "upload", `upload to give to relaying, in bit/s ("10M", "800k"; 0: relay to nobody)`)
	nf.reachability = fs.String("reachability", "auto", `whether other peers can dial this machine: "auto" (the bootstrap's AutoNAT finds out, about 17 s behind NAT), "private" (behind NAT or a firewall: take a relay address at once) or "public"`)
	nf.bootstrapPeers = fs.String("bootstrap-peer", "", `community bootstraps to get through NAT with: multiaddrs ending in /p2p/<ID>, as 'peerscope bootstrap' prints them, comma-separated (default: asked of the --bootstrap URLs)`)
	nf.bootstrap = fs.String("bootstrap", "", `community bootstraps' HTTP URLs, comma-separated: their keys make the node believe attestations, the first lists this node's broadcasts and serves the directory at /directory/, and their libp2p hosts get the node through NAT`)
	nf.every = fs.Duration("status-every", 10*time.Second, "how often to print where this node is in the tree")
	nf.verbose = fs.Bool("v", false, "log what the node does to stderr")
	nf.noReplays = fs.Bool("no-replays", false, "keep no replay chunks (a node keeps what it received for 24 hours after the end, and serves it to replay viewers)")
	return nf
}

func (nf *nodeFlags) config(noHTTPS bool) (node.Config, error) {
	cfg := node.Config{HTTP: *nf.http, DataDir: *nf.data, Upload: nf.upload.v, NoHTTPS: noHTTPS, NoReplays: *nf.noReplays,
		HostNames: splitList(*nf.hostNames)}
	if nf.upload.v == 0 {
		cfg.Upload, cfg.Slots = 0, node.NoRelay
	}
	if nf.https != nil && *nf.https != "off" {
		cfg.HTTPS = *nf.https
	} else {
		cfg.NoHTTPS = true
	}
	if nf.tlsCert != nil && (*nf.tlsCert != "" || *nf.tlsKey != "") {
		if *nf.tlsCert == "" || *nf.tlsKey == "" {
			return cfg, errors.New("--tls-cert FILE and --tls-key FILE go together: the certificate and its private key")
		}
		if _, err := tls.LoadX509KeyPair(*nf.tlsCert, *nf.tlsKey); err != nil {
			return cfg, fmt.Errorf("--tls-cert %s --tls-key %s: cannot load them: %v", *nf.tlsCert, *nf.tlsKey, err)
		}
		cfg.CertFile, cfg.KeyFile = *nf.tlsCert, *nf.tlsKey
	}
	for _, a := range strings.Split(*nf.listen, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Listen = append(cfg.Listen, a)
		}
	}
	if len(cfg.Listen) == 0 {
		return cfg, errors.New("--listen: no address")
	}
	if *nf.every <= 0 {
		return cfg, errors.New("--status-every must be positive")
	}
	peers, err := community.ParseBootstrapPeers(strings.Split(*nf.bootstrapPeers, ","))
	if err != nil {
		return cfg, fmt.Errorf("--bootstrap-peer: %w", err)
	}
	cfg.BootstrapPeers = peers
	switch *nf.reachability {
	case "auto":
	case "private":
		cfg.Reachability = network.ReachabilityPrivate
	case "public":
		cfg.Reachability = network.ReachabilityPublic
	default:
		return cfg, fmt.Errorf("--reachability %q: want auto, private or public", *nf.reachability)
	}
	cfg.Bootstrap = splitList(*nf.bootstrap)
	if len(cfg.Bootstrap) > 0 {
		cfg.OnLive = func(b *api.Listing) {
			who := b.Who.Handle
			if who == "" {
				who = b.Who.Key()
			}
			fmt.Printf("\nLive now: %s, %q. Watch it:\n  peerscope watch %s\n\n", who, b.Title, shellQuote(b.Link))
		}
		cfg.OnReminder = func(r api.Reminder) {
			fmt.Printf("\n%s\n\n", reminderLine(r))
		}
	}
	level := slog.LevelWarn
	if *nf.verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

// reminderLine is what a node prints of a scheduled broadcast's reminder:
// "Reminder: Harbour at dawn by Alice @alice in 3 days (Sat 5 Dec 16:09 CET)",
// in this machine's time zone.
func reminderLine(r api.Reminder) string {
	in := map[string]string{api.StepWeek: "in 7 days", api.StepD3: "in 3 days", api.StepD1: "in 1 day", api.StepHour: "in 1 hour"}[r.Step]
	s := r.Schedule
	who := strings.TrimSpace(s.Who.Name + " " + s.Who.Handle)
	if who == "" {
		who = s.Who.Key()
	}
	return fmt.Sprintf("Reminder: %s by %s %s (%s)", s.Title, who, in, s.Starts.Local().Format("Mon 2 Jan 15:04 MST"))
}

// startErr says what to do when a node did not start because of another
// program on the machine: a web server's address taken, a data directory
// another Peerscope runs from.
// What to do about the data directory is the command's to say (signin
// must use the running node's); "" says to run from another.
func startErr(err error, cfg node.Config, dataHint string) error {
	var le *node.ListenError
	switch {
	case errors.As(err, &le) && errors.Is(err, node.ErrAddrInUse):
		return fmt.Errorf("address %s is in use: pick another with --%s ADDR", le.Addr, strings.ToLower(le.Server))
	case errors.Is(err, node.ErrDataDirInUse):
		if dataHint == "" {
			dataHint = "use --data DIR2 (another directory) to run a second one"
		}
		return fmt.Errorf("another Peerscope is running from this data directory (%s): %s", cfg.DataDir, dataHint)
	}
	return err
}

// uploadFlag is a bitrate that may be 0.
type uploadFlag struct {
	v   int64
	set bool
}

func (u *uploadFlag) String() string {
	b := bitrateFlag(u.v)
	return b.String()
}

func (u *uploadFlag) Set(s string) error {
	u.set = true
	if strings.TrimSpace(s) == "0" {
		u.v = 0
		return nil
	}
	v, err := parseBitrate(s)
	u.v = v
	return err
}

// defaultDataDir is where a broadcaster keeps its identity and certificate,
// so that viewers' and phones' trust carries over between runs.
func defaultDataDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "peerscope")
}

// shellQuote quotes s as one word for a POSIX shell, whatever it holds: a
// command printed to copy runs what it says and nothing else.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
