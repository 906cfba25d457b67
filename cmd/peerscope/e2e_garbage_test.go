package main

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// TestBroadcastGarbageOnStdin: 'peerscope broadcast --from -' fed random
// bytes on stdin ends with exit code 1 and says why, in words.
func TestBroadcastGarbageOnStdin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	stdin := os.Stdin
	os.Stdin = pr
	defer func() { os.Stdin = stdin }()
	garbage := make([]byte, 2<<20)
	_, _ = rand.NewChaCha8([32]byte{'s', 't', 'd', 'i', 'n'}).Read(garbage)
	go func() {
		// Blocks once the node stops reading, until pr is closed.
		_, _ = pw.Write(garbage)
		pw.Close()
	}()
	out, err := capture(t, func() error {
		return run(t.Context(), []string{"broadcast", "--from", "-", "--http", "127.0.0.1:0", "--https", "off",
			"--listen", "/ip4/127.0.0.1/tcp/0", "--data", ""})
	})
	t.Logf("peerscope broadcast --from - < garbage: %v", err)
	if code := exitCode(err); code != 1 || err == nil || !strings.Contains(err.Error(), "bad input: no MPEG-TS program") {
		t.Fatalf("exit code %d, error %v\n%s", code, err, out)
	}
}
