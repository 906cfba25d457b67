package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	before, after := fullCommands()
	cs := append(before,
		command{"broadcast", "go live from a camera, OBS or ffmpeg, as the root of a relay tree; --private for people you pick", runBroadcast},
		command{"watch", "watch a broadcast link, relaying to peers as your upload allows", runWatch},
		command{"signin", "sign this node in at a community bootstrap (Twitter or a phone): a name, private broadcasts", runSignIn},
	)
	cs = append(cs, after...)
	return append(cs, command{"help", "show help for peerscope or one of its commands", runHelp})
}

func main() {
	if err := setTimerSlack(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "peerscope: timer slack: %v\n", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // from now on a second signal kills the process
	}()
	err := labPublicFromEnv()
	if err == nil {
		err = startPprof()
	}
	sizeRuntime(os.Args[1:])
	trimBinaryLater(os.Args[1:])
	if err == nil {
		err = run(ctx, os.Args[1:])
	}
	stop()
	var ue *usageError
	if err != nil && !errors.Is(err, flag.ErrHelp) && !(errors.As(err, &ue) && ue.reported) {
		fmt.Fprintf(os.Stderr, "peerscope: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// run dispatches to the command named by args[0].
func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		printUsage(os.Stderr)
		return &usageError{err: errors.New("no command given"), reported: true}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(os.Stdout)
		return flag.ErrHelp
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:])
		}
	}
	if slices.Contains(leftOut, args[0]) {
		return &usageError{err: fmt.Errorf("%q is not in this viewer-only build of peerscope (built with -tags light); build without the tag for it", args[0])}
	}
	return &usageError{err: fmt.Errorf("unknown command %q (run 'peerscope help' for the list)", args[0])}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Peerscope: live video from a phone or a PC to thousands of viewers, relayed peer to peer.

Usage: peerscope <command> [flags] [args]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	if viewerBuild {
		fmt.Fprintf(w, "\nThis is the viewer-only build (-tags light): %s are in the full build.\n", strings.Join(leftOut, ", "))
	}
	fmt.Fprint(w, "\nRun 'peerscope <command> --help' for a command's flags.\n")
}

// exitCode maps what a command returned to the process's exit status.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// usageError is a mistake in how peerscope was called. reported says that
// it has been printed already, with the usage, so main stays quiet.
type usageError struct {
	err      error
	reported bool
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error for the named command.
func usagef(name, format string, args ...any) error {
	return &usageError{err: fmt.Errorf("%s: %s (see 'peerscope %s --help')", name, fmt.Sprintf(format, args...), name)}
}

// newFlagSet returns a command's flag set. Its usage shows the synopsis
// (what follows "peerscope name"), the description and the flags.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("peerscope "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: peerscope %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses a command's arguments. Asked for --help, it prints the
// usage to stdout and returns flag.ErrHelp; given a bad flag, it prints the
// error and a one-line hint to stderr (the usage would bury the error) and
// returns a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var out bytes.Buffer
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on any error
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(nil)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fs.Usage()
		fs.SetOutput(nil)
		return err
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n%s -h for help\n", fs.Name(), err, fs.Name())
		return &usageError{err: err, reported: true}
	}
}
