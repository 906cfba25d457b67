package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
)

// typist types what the bootstrap texts: first a wrong code, then the one
// sent, as a person would at signin's prompt.
type typist struct{ w *io.PipeWriter }

func (p typist) SendCode(_ context.Context, _, code string) error {
	go fmt.Fprintf(p.w, "12345x\n%s\n", code)
	return nil
}

// TestSignInByPhone: 'peerscope signin --phone' texts a code (a real
// bootstrap, HTTP and SQLite), takes what is typed, says a wrong code did
// not work and takes the next; the node is signed in, and the same --data
// is signed in at the next run. Without --data or --bootstrap it refuses
// with the reason.
func TestSignInByPhone(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	stdin = r
	defer func() { stdin = nil }()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{Phone: typist{w}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	data := t.TempDir()
	args := []string{"signin", "--bootstrap", svc.URL(), "--data", data, "--http", "127.0.0.1:0"}
	out, err := capture(t, func() error { return run(t.Context(), append(args, "--phone", "+15550123")) })
	if err != nil {
		t.Fatalf("signin --phone: %v\n%s", err, out)
	}
	for _, want := range []string{"A code was texted to +15550123", "That did not work", "Signed in as +1•••0123", "(phone)"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q not in what signin printed:\n%s", want, out)
		}
	}
	out, err = capture(t, func() error { return run(t.Context(), args) })
	if err != nil || !strings.Contains(out, "signed in already, as +1•••0123") {
		t.Fatalf("signin again with the same --data: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"signin", "--bootstrap", svc.URL()}, "need --data"},
		{[]string{"signin", "--data", data}, "need --bootstrap"},
		{[]string{"signin", "--data", data, "--bootstrap", svc.URL(), "extra"}, "no arguments"},
	} {
		_, err := capture(t, func() error { return run(t.Context(), tc.args) })
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("peerscope %v: %v (exit %d), want a usage error saying %q", tc.args, err, exitCode(err), tc.want)
		}
	}
}
