package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/peerscope/peerscope/node"
)

func runWatch(ctx context.Context, args []string) error {
	fs := newFlagSet("watch", "[flags] LINK", `
Watches the broadcast at LINK (peerscope://…, as 'peerscope broadcast'
prints it): joins its relay tree, relays to as many peers as --upload allows,
and serves it on this machine: a player page for the browser, LL-HLS for VLC
or ffplay, WHEP. It prints those URLs, then where it is in the tree (every
--status-every), and stops when the broadcast ends or on Ctrl-C. Behind NAT,
give it --bootstrap-peer.`)
	nf := addNodeFlags(fs, nodeDefaults{http: "127.0.0.1:0", listen: "/ip4/0.0.0.0/tcp/0,/ip4/0.0.0.0/udp/0/quic-v1"})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("watch", "want one LINK, got %d arguments", fs.NArg())
	}
	link, err := node.ParseLink(fs.Arg(0))
	if err != nil {
		return usagef("watch", "%v", err)
	}
	cfg, err := nf.config(true)
	if err != nil {
		return usagef("watch", "%v", err)
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	b, err := n.Watch(jctx, link)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch: %w", err)
	}
	printWatch(os.Stdout, b)
	if err := follow(ctx, os.Stdout, b, *nf.every); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func printWatch(w io.Writer, b *node.Broadcast) {
	title := b.Title()
	if title == "" {
		title = "(untitled)"
	}
	fmt.Fprintf(w, "Watching %q, broadcast by %s.\n\n", title, b.Broadcaster())
	fmt.Fprintf(w, "  Player page:  %s\n", b.PlayerURL())
	fmt.Fprintf(w, "  LL-HLS:       %s  (VLC, ffplay)\n", b.HLSURL())
	fmt.Fprintf(w, "\nShare it on (through this node):\n  %s\n\n", b.Link())
	if b.Slots() == 0 {
		fmt.Fprint(w, "Relaying to nobody (--upload 0).\n")
	} else {
		fmt.Fprintf(w, "Relaying to up to %d peers.\n", b.Slots())
	}
}
