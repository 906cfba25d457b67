package main

import (
	"context"
	"errors"
)

func runBootstrap(ctx context.Context, args []string) error {
	fs := newFlagSet("bootstrap", "[flags]", `
Runs a community bootstrap node: libp2p bootstrap peer, DHT server and
circuit relay for peers behind NAT, plus the HTTP API for sign-in, identity
attestations, the broadcast directory and private-audience keys.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bootstrap", "unexpected argument %q", fs.Arg(0))
	}
	return errors.New("bootstrap: not available yet; it comes with the community bootstrap node")
}
