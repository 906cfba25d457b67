package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/node"
)

// TestCollisionsSayWhatToDo: what collides with another program on the
// machine — a busy --http or --https address, a data directory another
// Peerscope runs from — is told with the flag to change, and a flag
// mistyped gets its error and one line of hint, not the whole usage.
func TestCollisionsSayWhatToDo(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()

	// A Peerscope already running from a data directory: a real node.
	dir := t.TempDir()
	first, err := node.New(t.Context(), node.Config{DataDir: dir, NoHTTPS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	base := []string{"broadcast", "--from", "sample", "--listen", "/ip4/127.0.0.1/tcp/0"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
		not  []string
	}{
		{"busy --http", append(base, "--http", taken, "--https", "off", "--data", ""), 1,
			[]string{"address " + taken + " is in use: pick another with --http ADDR"}, []string{"invalid configuration"}},
		{"busy --https", []string{"broadcast", "--from", "whip", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--https", taken, "--data", ""}, 1,
			[]string{"address " + taken + " is in use: pick another with --https ADDR"}, []string{"invalid configuration"}},
		{"same --data", append(base, "--http", "127.0.0.1:0", "--https", "off", "--data", dir), 1,
			[]string{"another Peerscope is running from this data directory (" + dir + "): use --data DIR2"}, []string{"timeout", "replay store"}},
		{"unknown flag", []string{"broadcast", "--from", "whip", "--no-such-flag"}, 2,
			[]string{"flag provided but not defined: -no-such-flag", "peerscope broadcast -h for help"}, []string{"Usage:", "-status-every"}},
	} {
		// Bounded: a command that went live despite the collision would
		// wait for its publisher.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		out, err := capture(t, func() error { return run(ctx, tc.args) })
		cancel()
		if code := exitCode(err); code != tc.code {
			t.Errorf("%s: exit code %d (%v), want %d", tc.name, code, err, tc.code)
		}
		if err != nil {
			out += "peerscope: " + err.Error() + "\n"
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %q not in its output:\n%s", tc.name, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("%s: %q in its output:\n%s", tc.name, w, out)
			}
		}
		if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; tc.name == "unknown flag" && lines > 3 {
			t.Errorf("%s: %d lines:\n%s", tc.name, lines, out)
		}
		if strings.Contains(out, "is set up") {
			t.Errorf("%s went live:\n%s", tc.name, out)
		}
	}
}
