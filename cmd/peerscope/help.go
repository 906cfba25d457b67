package main

import (
	"context"
	"flag"
	"os"
	"slices"
)

func runHelp(ctx context.Context, args []string) error {
	fs := newFlagSet("help", "[command]", `
Shows the list of commands, or with a command's name, that command's usage
and flags (the same as 'peerscope <command> --help').`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		printUsage(os.Stdout)
		return nil
	case 1:
		for _, c := range commands() {
			if c.name == fs.Arg(0) {
				err := c.run(ctx, []string{"--help"})
				if err == flag.ErrHelp {
					return nil
				}
				return err
			}
		}
		if slices.Contains(leftOut, fs.Arg(0)) {
			return usagef("help", "%q is not in this viewer-only build (built with -tags light)", fs.Arg(0))
		}
		return usagef("help", "unknown command %q", fs.Arg(0))
	default:
		return usagef("help", "one command at a time")
	}
}
