package node_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/node"
)

// TestRevocationReachesChat measures how long a revocation takes to reach a
// running broadcast's chat: alice broadcasts, bob (signed in) watches and
// shows in alice's chat as an identified viewer; the bootstrap's operator
// revokes bob's node. Alice's node reads its bootstrap's trust statement
// every TrustRefresh ($PEERSCOPE_TRUST_REFRESH, default 2 s) and her room
// takes the new trust at once: bob must be anonymous there within one
// refresh interval (and a little for the fetch and the room's tick).
func TestRevocationReachesChat(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time")
	}
	refresh := 2 * time.Second
	if s := os.Getenv("PEERSCOPE_TRUST_REFRESH"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		refresh = d
	}
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 2, TrustRefresh: refresh}
	alice, bob := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	ctx := t.Context()
	b, err := alice.GoLive(ctx, node.LiveConfig{Title: "revocations", Source: sampleSource(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w, err := bob.Watch(ctx, b.Link())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	identified := func() bool {
		v, err := b.ChatViewers(ctx)
		if err != nil {
			return false
		}
		for _, x := range v.Identified {
			if x.Peer == bob.ID() {
				return true
			}
		}
		return false
	}
	waitFor(t, 60*time.Second, "bob to show as an identified viewer in alice's chat", identified)

	revoked := time.Now()
	if err := bootstrap.RevokeInDir(context.Background(), svc.DataDir(), bootstrap.Revoke{Peer: bob.ID().String()}, revoked); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*refresh+10*time.Second, "bob to be anonymous in alice's chat", func() bool { return !identified() })
	took := time.Since(revoked)
	t.Logf("the revocation reached the running broadcast's chat in %s (trust refresh every %s)", took.Round(time.Millisecond), refresh)
	if took > refresh+time.Second {
		t.Fatalf("it took %s, more than one refresh interval (%s) and a second", took, refresh)
	}
	waitFor(t, refresh+10*time.Second, "bob's node to drop its revoked attestation", func() bool { return bob.Attestation() == nil })
}
