package main

import (
	"os/exec"
	"testing"
)

// TestShellQuote: a printed command's argument is one shell word whatever
// it holds.
func TestShellQuote(t *testing.T) {
	for _, s := range []string{"peerscope://x.y?peer=/ip4/1.2.3.4/tcp/1/p2p/z", "a'b", "'; rm -rf ~ #", "$(id)`id`\"\\"} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("%q quoted as %s gives %q (%v)", s, shellQuote(s), out, err)
		}
	}
}
