package main

import (
	"context"
	"errors"
)

func runSim(ctx context.Context, args []string) error {
	fs := newFlagSet("sim", "[flags]", `
Simulates the relay tree: thousands of nodes over a modelled network
(latency, upload, loss, churn), deterministic for a given seed.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("sim: not implemented yet")
}
