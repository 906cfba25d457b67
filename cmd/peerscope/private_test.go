package main

import (
	"context"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
)

// startBootstrapHTTP runs a bootstrap's HTTP service (real HTTP and
// SQLite) on loopback for the command's tests.
func startBootstrapHTTP(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return svc.URL()
}

// TestPrivateNeedsSignIn: 'peerscope broadcast --private' and --audience
// say what is wrong before anything goes live: no --bootstrap, a bad
// --audience, an account the bootstrap does not know, and a node that is
// not signed in there (with where to sign in).
func TestPrivateNeedsSignIn(t *testing.T) {
	boot := startBootstrapHTTP(t)
	node := []string{"--from", "sample", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--https", "off",
		"--data", t.TempDir(), "--bootstrap", boot}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"broadcast", "--from", "sample", "--private", "@alice"}, 2, []string{"need --bootstrap"}},
		{[]string{"broadcast", "--from", "sample", "--audience", "friends", "--bootstrap", boot}, 2, []string{"want mutuals or group:NAME"}},
		{[]string{"broadcast", "--from", "sample", "--audience", "group:a b", "--bootstrap", boot}, 2, []string{"group name"}},
		{[]string{"broadcast", "--from", "sample", "--private", ",", "--bootstrap", boot}, 2, []string{"at least one account"}},
		{append([]string{"broadcast", "--private", "@nobody,twitter:42"}, node...), 1, []string{"unknown account", "@nobody", "twitter:42"}},
		{append([]string{"broadcast", "--audience", "mutuals"}, node...), 1, []string{"not signed in", "peerscope signin", "directory page", "http://127.0.0.1:"}},
		{append([]string{"broadcast", "--audience", "group:family"}, node...), 1, []string{"not signed in"}},
	} {
		out, err := capture(t, func() error { return run(t.Context(), tc.args) })
		if code := exitCode(err); code != tc.code {
			t.Errorf("peerscope %v: exit code %d (%v), want %d", tc.args[:5], code, err, tc.code)
		}
		if err != nil {
			out += err.Error()
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("peerscope %v: %q not in its output or error:\n%s", tc.args[:5], w, out)
			}
		}
		if strings.Contains(out, "is set up") {
			t.Errorf("peerscope %v went live:\n%s", tc.args[:5], out)
		}
	}
}
