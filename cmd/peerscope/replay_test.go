package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
)

var printedLink = regexp.MustCompile(`peerscope://\S+`)

// TestReplayFromTheOriginalLink: the README's replay, taken slowly. The
// sample broadcast ends with nobody watching; its node stays up serving
// the replay, so 'watch LINK' with the link it printed, started after the
// end, plays the replay, and so does 'watch --replay LINK'.
func TestReplayFromTheOriginalLink(t *testing.T) {
	node := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--data", ""}
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = file, file // every command below prints here
	defer func() { os.Stdout, os.Stderr = stdout, stderr }()
	read := func() string {
		b, _ := os.ReadFile(file.Name())
		return string(b)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 3)
	started := 0
	start := func(args ...string) {
		started++
		// (the node's flags first: a LINK ends the flags)
		go func() { done <- run(ctx, append(append([]string{args[0]}, node...), args[1:]...)) }()
	}
	defer func() {
		cancel()
		for range started {
			<-done
		}
	}()
	wait := func(what string, n int) {
		t.Helper()
		testutil.WaitFor(t, 90*time.Second, what, func() bool {
			select {
			case err := <-done:
				done <- err // for the deferred drain
				os.Stdout, os.Stderr = stdout, stderr
				t.Fatalf("a command ended (%v) before %s:\n%s", err, what, read())
			default:
			}
			return strings.Count(read(), what) >= n
		})
	}

	start("broadcast", "--from", "sample", "--title", "slow viewers", "--https", "off")
	wait("Serving the replay until Ctrl-C", 1)
	l := printedLink.FindString(read())
	if l == "" {
		t.Fatalf("no link printed:\n%s", read())
	}
	start("watch", l)
	wait("The broadcast has ended; playing its replay.", 1)
	wait(" chunks here (", 1)
	start("watch", "--replay", l)
	wait(" chunks here (", 2)
	if out := read(); strings.Count(out, `Replay of "slow viewers"`) != 2 {
		t.Fatalf("the replay not played twice:\n%s", out)
	}
}
