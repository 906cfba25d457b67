//go:build !light

package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// TestBootstrapExitCodes: the bootstrap command's usage errors (the other
// commands' are in TestExitCodes, which the viewer-only build runs too).
func TestBootstrapExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error or the output
	}{
		{[]string{"bootstrap", "extra"}, "unexpected argument"},
		{[]string{"bootstrap", "--relay-data", "lots"}, "relay-data"},
		{[]string{"bootstrap", "--relay-circuits", "0"}, "must be positive"},
		{[]string{"bootstrap", "--sms", "ftp://gateway"}, "--sms must be"},
	} {
		out, err := capture(t, func() error { return run(context.Background(), tc.args) })
		if code := exitCode(err); code != 2 {
			t.Errorf("peerscope %v: exit code %d (%v), want 2", tc.args, code, err)
		}
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("peerscope %v: %q not in its output or error:\n%s", tc.args, tc.want, out)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1024", want: 1024},
		{in: "8GiB", want: 8 << 30},
		{in: "500MB", want: 500e6},
		{in: "1.5 GB", want: 1.5e9},
		{in: "64kib", want: 64 << 10},
		{in: "2T", want: 2e12},
		{in: "", bad: true},
		{in: "-1", bad: true},
		{in: "lots", bad: true},
		{in: "3 parsecs", bad: true},
		{in: "99999999TiB", bad: true},
	} {
		got, err := parseByteSize(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d (bad: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestBootstrapCommand runs 'peerscope bootstrap' on loopback: it prints
// multiaddrs that name its peer ID, keeps that ID across a restart (the
// key is under --data), and stops when its context ends.
func TestBootstrapCommand(t *testing.T) {
	dir := t.TempDir()
	runOnce := func() string {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out, err := capture(t, func() error {
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, []string{"bootstrap", "--listen", "/ip4/127.0.0.1/tcp/0", "--data", dir})
			}()
			deadline := time.Now().Add(30 * time.Second)
			for {
				b, _ := os.ReadFile(os.Stdout.Name())
				if strings.Contains(string(b), "Ctrl-C") || time.Now().After(deadline) {
					break
				}
				select {
				case err := <-errc:
					return err
				case <-time.After(20 * time.Millisecond):
				}
			}
			cancel()
			return <-errc
		})
		if err != nil {
			t.Fatalf("bootstrap: %v\n%s", err, out)
		}
		i := strings.Index(out, "/ip4/127.0.0.1/tcp/")
		if i < 0 || !strings.Contains(out[i:], "/p2p/12D3KooW") {
			t.Fatalf("no loopback multiaddr with /p2p/ printed:\n%s", out)
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		_, id, _ := strings.Cut(line, "/p2p/")
		return id
	}
	first, second := runOnce(), runOnce()
	if first != second {
		t.Fatalf("the peer ID changed across a restart: %s then %s", first, second)
	}
}

// FuzzParseByteSize: a size is refused or non-negative and within bounds.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"8GiB", "500MB", "1.5 GB", "64kib", "", "-1", "lots", "1e400", "99999999TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseByteSize(s)
		if err == nil && (v < 0 || v > 1<<62) {
			t.Fatalf("%q → %d", s, v)
		}
	})
}

// TestConsoleCodes: with the console sender (the default), a phone code is
// printed on the bootstrap's output without -v, the number masked; the
// full number appears nowhere in what it writes.
func TestConsoleCodes(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, err := capture(t, func() error {
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, []string{"bootstrap", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--data", t.TempDir()})
		}()
		var base string
		if err := waitOutput(30*time.Second, errc, func(s string) bool {
			_, rest, ok := strings.Cut(s, "Directory and HTTP API (--bootstrap): ")
			base, _, _ = strings.Cut(rest, "\n")
			return ok && strings.Contains(rest, "\n")
		}); err != nil {
			return err
		}
		priv, _, _ := crypto.GenerateEd25519Key(nil)
		if err := (&api.Client{Base: base, Key: priv}).PhoneStart(ctx, "+15550100"); err != nil {
			return err
		}
		if err := waitOutput(10*time.Second, errc, func(s string) bool { return strings.Contains(s, "Phone sign-up code") }); err != nil {
			return err
		}
		cancel()
		return <-errc
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !regexp.MustCompile(`Phone sign-up code for \+1•••0100: [0-9]{6}\b`).MatchString(out) {
		t.Fatalf("no code printed (without -v):\n%s", out)
	}
	if strings.Contains(out, "5550100") {
		t.Fatalf("the full number is in the output:\n%s", out)
	}
}

// waitOutput waits until what the command wrote so far (os.Stdout, the
// capture file) satisfies ok, or the command ends, or d passes.
func waitOutput(d time.Duration, errc chan error, ok func(string) bool) error {
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(os.Stdout.Name())
		if ok(string(b)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not in the output within %s", d)
		}
		select {
		case err := <-errc:
			return fmt.Errorf("the command ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRevokeFlags: --revoke-key revokes (after rotating) the current key
// of a data directory; a --revoke-… without --data, or with a key that is
// not hex, is a usage error.
func TestRevokeFlags(t *testing.T) {
	dir := t.TempDir()
	k, err := bootstrap.LoadKeyRing(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := k.KeySet().Current()
	out, err := capture(t, func() error {
		return run(t.Context(), []string{"bootstrap", "--data", dir, "--revoke-key", hex.EncodeToString(cur.Public)})
	})
	if err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("%v: %s", err, out)
	}
	k, _ = bootstrap.LoadKeyRing(dir, nil)
	set := k.KeySet()
	if now, _ := set.Current(); now.Public.Equal(cur.Public) || len(set.Keys) != 2 || !set.Keys[1].Revoked {
		t.Fatalf("key set after --revoke-key: %+v", set)
	}
	for _, args := range [][]string{{"--data", "", "--revoke-peer", "x"}, {"--data", dir, "--revoke-key", "nothex"}} {
		if _, err := capture(t, func() error { return run(t.Context(), append([]string{"bootstrap"}, args...)) }); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestFederateFlag: --federate is repeatable, and a URL a node would not
// trust (plain http to another machine, no pin) is refused at parsing.
func TestFederateFlag(t *testing.T) {
	cfg := bootstrap.DefaultConfig()
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addBootstrapFlags(fs, &cfg)
	pin := "http://boot.example:8090#pin=" + strings.Repeat("ab", 16)
	if err := fs.Parse([]string{"--federate", "https://a.example", "--federate", pin, "--federate", "http://127.0.0.1:8091"}); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.Federation.Peers; len(got) != 3 || got[0] != "https://a.example" || got[1] != pin {
		t.Fatalf("peers %q", got)
	}
	fs = flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addBootstrapFlags(fs, &cfg)
	if err := fs.Parse([]string{"--federate", "http://boot.example:8090"}); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("plain http without a pin: %v", err)
	}
}
