package main

import (
	"context"
	"errors"
)

func runWatch(ctx context.Context, args []string) error {
	fs := newFlagSet("watch", "[flags] LINK", `
Watches the broadcast at LINK: joins its relay tree, relays to as many peers
as your upload allows, and plays it locally (web page, LL-HLS for VLC or
ffplay, WHEP).`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("watch", "want one LINK, got %d arguments", fs.NArg())
	}
	return errors.New("watch: not available yet; it comes with real video (playback of a broadcast link)")
}
