package bootstrap_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestSignOutAndRevocation: a node signs out; another node of the account
// ends a third one's session (one a phisher got, say); the account signs
// out everywhere. Each time the session ends at once, and the attestations
// the bootstrap had given are revoked in its signed trust statement, which
// nodes verify against: the other nodes' attestations are untouched. A
// node that signs in again later is believed again.
func TestSignOutAndRevocation(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		laptop, phone, stolen := e.node(1), e.node(2), e.node(3)
		att := map[*node][]byte{}
		for _, n := range []*node{laptop, phone, stolen} {
			att[n] = e.signIn(n, "100").Attestation
		}
		believed := func(n *node) error {
			t.Helper()
			trust, err := api.TrustSetFrom(ctx, nil, e.url)
			if err != nil {
				t.Fatal(err)
			}
			_, err = trust.VerifyBytes(att[n], n.id, e.clock.Now())
			return err
		}
		for n := range att {
			if err := believed(n); err != nil {
				t.Fatalf("%s before any sign-out: %v", n.id, err)
			}
		}

		e.clock.Advance(time.Second)
		if err := laptop.c.SignOut(ctx, false); err != nil {
			t.Fatal(err)
		}
		_, err := laptop.c.Following(ctx)
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		_, err = laptop.c.Attestation(ctx)
		mustStatus(t, err, http.StatusNotFound, "not_found")
		if err := believed(laptop); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("the signed-out node's attestation: %v, want ErrRevoked", err)
		}
		if believed(phone) != nil || believed(stolen) != nil {
			t.Fatal("another node's attestation went with the sign-out")
		}

		// The phone sees the account's sessions and ends the stolen one.
		list, err := phone.c.Sessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Sessions) != 2 || list.Account != "twitter:100" {
			t.Fatalf("sessions %+v", list)
		}
		for _, s := range list.Sessions {
			if s.Current != (s.Peer == phone.id.String()) {
				t.Fatalf("current session marked wrong: %+v", s)
			}
		}
		if err := phone.c.RevokeSession(ctx, stolen.id.String()); err != nil {
			t.Fatal(err)
		}
		if err := believed(stolen); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("the stolen session's attestation: %v", err)
		}
		if believed(phone) != nil {
			t.Fatal("the phone's own attestation went too")
		}
		// Nobody ends a session of another account.
		bob := e.node(4)
		e.signIn(bob, "200")
		mustStatus(t, bob.c.RevokeSession(ctx, phone.id.String()), http.StatusNotFound, "not_found")
		if believed(phone) != nil {
			t.Fatal("another account revoked the phone")
		}

		// Everywhere.
		if err := phone.c.SignOut(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := believed(phone); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("after signing out everywhere: %v", err)
		}
		if _, err := phone.c.Following(ctx); err == nil {
			t.Fatal("a session left after signing out everywhere")
		}

		// Later the laptop signs in again: the new attestation is believed.
		e.clock.Advance(time.Minute)
		att[laptop] = e.signIn(laptop, "100").Attestation
		if err := believed(laptop); err != nil {
			t.Fatalf("signed in again: %v", err)
		}
	})
}
