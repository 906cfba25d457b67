package main

import (
	"context"
	"errors"
)

func runBench(ctx context.Context, args []string) error {
	fs := newFlagSet("bench", "[flags]", `
Measures the relay tree with real libp2p hosts on loopback: one broadcaster,
many viewers, synthetic chunks; prints latency, delivery and upload figures.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("bench: not implemented yet")
}
