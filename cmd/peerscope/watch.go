package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
	"github.com/peerscope/peerscope/replay/swarm"
)

func runWatch(ctx context.Context, args []string) error {
	fs := newFlagSet("watch", "[flags] LINK", `
Watches the broadcast at LINK (peerscope://…, as 'peerscope broadcast'
prints it): joins its relay tree, relays to as many peers as --upload allows,
and serves it on this machine: a player page for the browser, LL-HLS for VLC
or ffplay, WHEP. It prints those URLs, then where it is in the tree (every
--status-every). When the broadcast ends it stays up serving the replay to
others (the replay lives on the viewers' nodes) until Ctrl-C; with
--serve-replay=false, or --no-replays, it stops at the end. A broadcast that
has already ended plays as its replay, if a peer of LINK holds it. Behind
NAT, give it --bootstrap (or --bootstrap-peer).

A private broadcast plays only on a node its broadcaster invited: one
signed in at the --bootstrap as an invited account (on the directory page
it prints; the node then publishes its audience device key there). Told
that a broadcast is private, watch with --bootstrap waits for that sign-in,
trying again every 5 s. --data DIR keeps the node's identity, sign-in and
device key across runs.

With --replay, it plays an ended broadcast's replay instead, fetched from
whichever peers of its swarm still hold it (the broadcaster need not be
online), for 24 hours after the end: it prints the replay page and the HLS
VOD URL, fetches every chunk, and serves them until Ctrl-C.`)
	nf := addNodeFlags(fs, nodeDefaults{http: "127.0.0.1:0", listen: "/ip4/0.0.0.0/tcp/0,/ip4/0.0.0.0/udp/0/quic-v1,/ip4/0.0.0.0/udp/0/webrtc-direct"})
	replayMode := fs.Bool("replay", false, "play the replay of an ended broadcast")
	serveReplay := fs.Bool("serve-replay", true, "when the broadcast ends, stay up and serve its replay to others (24 hours, or until Ctrl-C); =false to stop at the end")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("watch", "want one LINK, got %d arguments", fs.NArg())
	}
	l, err := link.Parse(fs.Arg(0))
	if err != nil {
		return usagef("watch", "%v", err)
	}
	cfg, err := nf.config(true)
	if err != nil {
		return usagef("watch", "%v", err)
	}
	sayNATWait(os.Stdout, cfg)
	n, err := node.New(ctx, cfg)
	if err != nil {
		return startErr(err, cfg, "")
	}
	defer n.Close()
	if *replayMode {
		return watchReplay(ctx, n, l, false)
	}
	b, err := watchLink(ctx, os.Stdout, n, l)
	if err == nil && b.Announcement().Ended {
		// Joined as it ended (its broadcaster still answers): the replay
		// is what there is to watch.
		_ = b.Close()
		err = fmt.Errorf("%w: the broadcast has ended", node.ErrUnreachable)
	}
	if errors.Is(err, node.ErrUnreachable) && ctx.Err() == nil {
		// Ended (or its broadcaster is gone): its replay, if a peer of
		// the link holds one, is what the link now plays.
		if rerr := watchReplay(ctx, n, l, true); !errors.Is(rerr, errNoReplay) {
			return rerr
		}
		return fmt.Errorf("watch: %w\n  The broadcast has ended, or its broadcaster's node is offline, and no peer of this link holds its replay.\n"+
			"  A replay lives 24 hours on the nodes that watched it: play it with 'peerscope watch --replay LINK2',\n"+
			"  LINK2 being the link such a node printed (\"Share it on\"); it may also be in the bootstrap's directory", err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, node.ErrNotMember) {
			return fmt.Errorf("watch: %w\n  If you were invited: sign in with 'peerscope signin --bootstrap URL --data DIR', watch with the same --bootstrap and --data, and the broadcaster's node lets you in", err)
		}
		return fmt.Errorf("watch: %w", err)
	}
	printWatch(os.Stdout, b)
	if err := follow(ctx, os.Stdout, b, *nf.every); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if *serveReplay && ctx.Err() == nil && n.ReplayStore() != nil {
		fmt.Printf("Serving the replay to others until Ctrl-C; it plays here too: %s/r/%s/\n", n.HTTPURL(), b.ID())
		<-ctx.Done()
	}
	return nil
}

// watchLink joins the broadcast at l. A private one this node is not in
// the audience of, on a node with a bootstrap, is tried again every 5 s
// until ctx ends: someone invited signs in on the directory page meanwhile
// (the node publishes its device key there) and the broadcaster's node,
// which looks its audience up again, lets the new device in.
func watchLink(ctx context.Context, w io.Writer, n *node.Node, l link.Link) (*node.Broadcast, error) {
	told := false
	for {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := n.Watch(jctx, l)
		cancel()
		if err == nil || !errors.Is(err, node.ErrNotMember) || n.DirectoryURL() == "" || ctx.Err() != nil {
			return b, err
		}
		if !told {
			fmt.Fprintf(w, "This broadcast is private and this node is not in its audience (%v).\n\n"+
				"If you were invited, sign in on %s: this node then publishes its device key at the\n"+
				"bootstrap, and the broadcaster's node lets it in. Trying again every 5 s (Ctrl-C to stop)…\n", err, n.DirectoryURL())
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func printWatch(w io.Writer, b *node.Broadcast) {
	title := b.Announcement().Title
	if title == "" {
		title = "(untitled)"
	}
	fmt.Fprintf(w, "Watching %q, broadcast by %s.\n\n", title, b.Broadcaster())
	if b.Private() {
		fmt.Fprint(w, "A private broadcast you are invited to: it is decrypted on this node, for its players only.\n\n")
	}
	fmt.Fprintf(w, "  Player page:  %s\n", b.URLs().Player)
	fmt.Fprintf(w, "  LL-HLS:       %s  (VLC, ffplay)\n", b.URLs().HLS)
	fmt.Fprintf(w, "\nShare it on (through this node):\n  %s\n\n", b.Link())
	if b.Slots() == 0 {
		fmt.Fprint(w, "Relaying to nobody (--upload 0).\n")
	} else {
		fmt.Fprintf(w, "Relaying to up to %d peers.\n", b.Slots())
	}
}

// errNoReplay is watchReplay's error, when asked from a plain watch, for
// a link none of whose peers holds the replay: the caller says why.
var errNoReplay = errors.New("no replay")

// watchReplay opens a replay, prints its URLs and serves it until ctx ends.
// fallback says a plain 'watch' of an ended broadcast asked.
func watchReplay(ctx context.Context, n *node.Node, l link.Link, fallback bool) error {
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	r, err := n.Replay(jctx, l)
	cancel()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil
	case fallback && (errors.Is(err, swarm.ErrUnreachable) || errors.Is(err, swarm.ErrNoManifest)):
		return errNoReplay
	case errors.Is(err, swarm.ErrUnreachable):
		return fmt.Errorf("watch --replay: %w\n  No peer of this link answers: the broadcaster's node (and any other the link names) is offline.\n"+
			"  Nodes that watched it keep the replay 24 hours: use the link one of them printed (\"Share it on\")", err)
	default:
		return fmt.Errorf("watch --replay: %w", err)
	}
	if fallback {
		fmt.Print("The broadcast has ended; playing its replay.\n\n")
	}
	m := r.Manifest()
	title := m.Title
	if title == "" {
		title = "(untitled)"
	}
	fmt.Printf("Replay of %q: %v, ended %s.\n\n", title, r.Duration().Round(time.Second), m.Ended.Format(time.RFC1123))
	fmt.Printf("  Player page:  %s\n", r.PlayerURL())
	fmt.Printf("  HLS (VOD):    %s  (VLC, ffplay)\n\n", r.HLSURL())
	select {
	case <-r.Complete():
		p := r.Progress()
		fmt.Printf("All %d chunks here (%d fetched, %.1f MB, in %v); serving until Ctrl-C.\n", p.Chunks, p.Fetched, float64(p.Bytes)/1e6, p.Elapsed.Round(time.Millisecond))
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}
