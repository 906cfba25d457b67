package bootstrap_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestOperatorRevokes: the operator revokes, on the data directory of a
// running bootstrap, the current attestation key (it leaked), then one
// attestation, then an account. Within a second the trust statement nodes
// read says so: what the key signed is refused, and the node still signed
// in gets an attestation of the new key; the one attestation is refused
// and no longer handed out; the account's sessions are over.
func TestOperatorRevokes(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		dir := e.svc.DataDir()
		alice, bob := e.node(1), e.node(2)
		first := e.signIn(alice, "100").Attestation
		e.signIn(bob, "200")
		verify := func(att []byte, n *node) error {
			t.Helper()
			trust, err := api.TrustSetFrom(ctx, nil, e.url)
			if err != nil {
				t.Fatal(err)
			}
			_, err = trust.VerifyBytes(att, n.id, e.clock.Now())
			return err
		}
		leaked, _ := e.svc.Keys.KeySet().Current()
		// As --revoke-key does: the key file's ring, or the database's on PostgreSQL.
		if _, err := bootstrap.RevokeKeyAt(ctx, dir, e.db, leaked.Public, e.clock.Now(), nil); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		if err := verify(first, alice); !errors.Is(err, identity.ErrUntrusted) {
			t.Fatalf("signed by the revoked key: %v", err)
		}
		again, err := alice.c.Attestation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(again.Attestation, alice); err != nil {
			t.Fatalf("the re-issued attestation: %v", err)
		}
		a, _ := identity.ParseAttestation(again.Attestation)
		if a.Issuer.Equal(leaked.Public) {
			t.Fatal("re-issued by the revoked key")
		}
		if again.ID != a.ID() {
			t.Fatalf("the answer names the attestation %q, its ID is %q", again.ID, a.ID())
		}

		if err := bootstrap.RevokeIn(ctx, e.db, bootstrap.Revoke{Attestation: again.ID}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		if err := verify(again.Attestation, alice); !errors.Is(err, identity.ErrRevoked) {
			t.Fatalf("the revoked attestation: %v", err)
		}
		_, err = alice.c.Attestation(ctx)
		mustStatus(t, err, http.StatusNotFound, "not_found")

		if err := bootstrap.RevokeIn(ctx, e.db, bootstrap.Revoke{Account: "twitter:200"}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		_, err = bob.c.Following(ctx)
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		for _, bad := range []bootstrap.Revoke{{}, {Peer: "x"}, {Account: "nocolon"}, {Attestation: "00"}, {Peer: bob.id.String(), Account: "twitter:200"}} {
			if err := bootstrap.RevokeIn(ctx, e.db, bad, e.clock.Now()); err == nil {
				t.Errorf("%+v: revoked", bad)
			}
		}
		if _, err := bootstrap.RevokeKeyAt(ctx, dir, e.db, make([]byte, 32), e.clock.Now(), nil); err == nil {
			t.Error("an unknown key revoked")
		}
	})
}
