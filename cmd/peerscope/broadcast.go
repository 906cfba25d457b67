package main

import (
	"context"
	"errors"
)

func runBroadcast(ctx context.Context, args []string) error {
	fs := newFlagSet("broadcast", "[flags]", `
Goes live: ingests video (WHIP from a browser or OBS, RTMP from OBS or
ffmpeg, MPEG-TS, or a file), cuts it into signed chunks and roots a relay
tree that viewers join. Prints the link to share.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("broadcast", "unexpected argument %q", fs.Arg(0))
	}
	return errors.New("broadcast: not available yet; it comes with real video (media ingest and the CMAF chunker)")
}
