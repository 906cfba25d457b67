package bootstrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// TestKeyRotation: a bootstrap rotates its attestation key; a node that
// reads the new key set keeps believing what the old key issued before the
// rotation, believes what the new key issues, and refuses an attestation
// the old key signed after it was retired.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old, err := bootstrap.LoadKeyRing(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, bootstrap.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := bootstrap.LoadKeyRing(dir, nil)
	if err != nil || !again.Key().Equal(old.Key()) {
		t.Fatal("the key did not persist")
	}
	p := testPeerID(t, 5)
	sign := func(k *bootstrap.KeyRing, issued time.Time) []byte {
		a := &identity.Attestation{Provider: "phone", Account: "p1", Peer: p, Issued: issued, Expires: issued.Add(30 * 24 * time.Hour)}
		if err := a.Sign(k.Key()); err != nil {
			t.Fatal(err)
		}
		return a.Marshal()
	}
	before := sign(old, t0)
	rotation := t0.Add(24 * time.Hour)
	cur, err := bootstrap.RotateKeyRing(dir, rotation, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Key().Equal(old.Key()) || len(cur.KeySet().Keys) != 2 {
		t.Fatalf("rotation: %+v", cur.KeySet())
	}
	reloaded, err := bootstrap.LoadKeyRing(dir, nil)
	if err != nil || !reloaded.Key().Equal(cur.Key()) || len(reloaded.KeySet().Keys) != 2 {
		t.Fatal("the rotation did not persist")
	}
	trust, err := identity.NewTrustSet(reloaded.KeySet())
	if err != nil {
		t.Fatal(err)
	}
	now := rotation.Add(time.Hour)
	if _, err := trust.VerifyBytes(before, p, now); err != nil {
		t.Fatalf("issued before the rotation: %v", err)
	}
	if _, err := trust.VerifyBytes(sign(cur, rotation), p, now); err != nil {
		t.Fatalf("issued by the new key: %v", err)
	}
	if _, err := trust.VerifyBytes(sign(old, rotation.Add(time.Minute)), p, now); !errors.Is(err, identity.ErrUntrusted) {
		t.Fatalf("the old key after its retirement: %v", err)
	}
	// The service publishes the new set.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: dir, HTTP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	info, err := (&api.Client{Base: svc.URL()}).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Keys.Keys) != 2 || !info.Keys.Keys[0].Public.Equal(cur.Key().Public()) || info.Keys.Keys[1].Until.IsZero() {
		t.Fatalf("published keys %+v", info.Keys)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
