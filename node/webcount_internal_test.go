package node

import (
	"fmt"
	"testing"
	"time"
)

// TestWebClientsBounded: LL-HLS clients are remembered up to
// maxWebClients; past it a new one is not counted until old ones age out
// of the window, and a client counts at most browsersPerClient.
func TestWebClientsBounded(t *testing.T) {
	var w webClients
	now := time.Unix(1_800_000_000, 0)
	for i := range maxWebClients + 1000 {
		w.touch(fmt.Sprintf("10.%d.%d.%d:443", i>>16, (i>>8)&255, i&255), now)
	}
	if got := w.count(now, nil); got != maxWebClients {
		t.Fatalf("%d clients counted, want the bound %d", got, maxWebClients)
	}
	later := now.Add(webViewerWindow + time.Second)
	w.touch("192.0.2.1:1", later)
	if got := w.count(later, map[string]int{"192.0.2.1": 9, "192.0.2.2": 2}); got != browsersPerClient+2 {
		t.Fatalf("after the window: %d, want %d + 2", got, browsersPerClient)
	}
}

// TestWebClientsChange: touch says when the count may have changed (a new
// client, or one back after the window) and expiry when the first client
// drops out: the times the chat loop tells the tree.
func TestWebClientsChange(t *testing.T) {
	var w webClients
	now := time.Unix(1_800_000_000, 0)
	if !w.expiry().IsZero() {
		t.Fatal("an expiry with no client")
	}
	if !w.touch("192.0.2.1:1", now) || w.touch("192.0.2.1:2", now.Add(time.Second)) {
		t.Fatal("touch: a new client, then the same one again")
	}
	if !w.touch("192.0.2.2:1", now.Add(2*time.Second)) {
		t.Fatal("touch: another client")
	}
	exp := w.expiry()
	if want := now.Add(time.Second + webViewerWindow + time.Nanosecond); !exp.Equal(want) {
		t.Fatalf("expiry %v, want %v", exp, want)
	}
	if w.count(exp.Add(-time.Nanosecond), nil) != 2 || w.count(exp, nil) != 1 {
		t.Fatal("the first client does not drop out at its expiry")
	}
	if !w.touch("192.0.2.1:1", exp) {
		t.Fatal("touch: a client back after the window")
	}
}
