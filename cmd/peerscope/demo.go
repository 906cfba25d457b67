package main

import (
	"context"
	"errors"
)

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", "[flags]", `
Streams the built-in sample clip through a relay tree of local nodes and
serves a page to watch it, so you can see Peerscope work on one machine.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("demo: not implemented yet")
}
