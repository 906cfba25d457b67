package bootstrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestReplicaKeys (PostgreSQL): two replicas on one database, each with
// its own data directory, are one bootstrap: the same fingerprint and the
// same attestation key, on their info too.
func TestReplicaKeys(t *testing.T) {
	db := pgtest.DB(t)
	a, b := newEnvOn(t, db, nil), newEnvOn(t, db, nil)
	if a.svc.Keys.ID() != b.svc.Keys.ID() {
		t.Fatalf("replicas with fingerprints %s and %s", a.svc.Keys.ID(), b.svc.Keys.ID())
	}
	if !a.svc.Keys.Key().Equal(b.svc.Keys.Key()) {
		t.Fatal("replicas with different attestation keys")
	}
	// The first made the keys and keeps them in its data directory too, as
	// a bootstrap always did; the second has no key file of its own.
	if file, err := bootstrap.LoadKeyRing(a.svc.DataDir(), nil); err != nil || file.ID() != a.svc.Keys.ID() {
		t.Fatalf("the first replica's key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.svc.DataDir(), bootstrap.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the second replica wrote a key file: %v", err)
	}
	ctx := t.Context()
	ia, err := (&api.Client{Base: a.url}).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := (&api.Client{Base: b.url}).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ia.ID != ib.ID || !ia.Keys.Keys[0].Public.Equal(ib.Keys.Keys[0].Public) {
		t.Fatalf("infos: %s %x, %s %x", ia.ID, []byte(ia.Keys.Keys[0].Public), ib.ID, []byte(ib.Keys.Keys[0].Public))
	}
	// A phone number signed up on one is the same account on the other:
	// the secret that keys the hashes is shared too.
	n := a.node(1)
	signUp(t, a, n, "+15550140")
	m := b.node(1)
	res := signUp(t, b, m, "+15550140")
	if res.Account.Subject == "" {
		t.Fatal("no account")
	}
	if got := a.count("accounts"); got != 1 {
		t.Fatalf("one number on two replicas made %d accounts", got)
	}
}

// signUp signs n up at e with phone, as a node does.
func signUp(t *testing.T, e *env, n *node, phone string) api.AttestationResponse {
	t.Helper()
	ctx := t.Context()
	if err := n.c.PhoneStart(ctx, phone); err != nil {
		t.Fatal(err)
	}
	res, err := n.c.PhoneVerify(ctx, phone, e.codes.code(phone))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestReplicaKeyRotation (PostgreSQL): a rotation by the command's path
// (RotateKeyRingAt with --db) is seen by every replica: what replica B
// signs after it verifies with the new key alone; A's trust statement
// lists the old key, retired.
func TestReplicaKeyRotation(t *testing.T) {
	db := pgtest.DB(t)
	a, b := newEnvOn(t, db, nil), newEnvOn(t, db, nil)
	ctx := t.Context()
	ca := &api.Client{Base: a.url}
	before, err := ca.Trust(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := before.Current()

	rotation := a.clock.Now()
	k, err := bootstrap.RotateKeyRingAt(ctx, t.TempDir(), db, rotation, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := k.KeySet().Current()
	if cur.Public.Equal(old.Public) || k.ID() != a.svc.Keys.ID() {
		t.Fatalf("rotated to %x (was %x), bootstrap %s", []byte(cur.Public), []byte(old.Public), k.ID())
	}
	a.clock.Advance(time.Minute)
	b.clock.Advance(time.Minute)

	n := b.node(2)
	res := signUp(t, b, n, "+15550141")
	onlyNew, err := identity.NewTrustSet(identity.KeySet{Keys: []identity.Key{cur}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyNew.VerifyBytes(res.Attestation, n.id, b.clock.Now()); err != nil {
		t.Fatalf("replica B's attestation after the rotation, by the new key: %v", err)
	}

	after, err := ca.Trust(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Keys) != 2 || !after.Keys[0].Public.Equal(cur.Public) ||
		!after.Keys[1].Public.Equal(old.Public) || !after.Keys[1].Until.Equal(rotation) {
		t.Fatalf("replica A's trust statement after the rotation: %+v", after.Keys)
	}

	// An unknown key is refused and changes nothing.
	if _, err := bootstrap.RevokeKeyAt(ctx, "", db, make([]byte, 32), rotation.Add(time.Second), nil); !errors.Is(err, bootstrap.ErrNotFound) {
		t.Fatalf("revoking an unknown key: %v", err)
	}
	if ks, err := ca.Trust(ctx); err != nil || len(ks.Keys) != 2 || ks.Keys[1].Revoked || !ks.Keys[0].Public.Equal(cur.Public) {
		t.Fatalf("after a refused revocation: %+v %v", ks.Keys, err)
	}

	// A revocation too, by the same path: both publish it.
	if _, err := bootstrap.RevokeKeyAt(ctx, "", db, old.Public, rotation.Add(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*env{a, b} {
		ks, err := (&api.Client{Base: e.url}).Trust(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks.Keys) != 2 || !ks.Keys[1].Revoked {
			t.Fatalf("after revoking the old key, %s publishes %+v", e.url, ks.Keys)
		}
	}
}

// TestReplicaOtherIdentity (PostgreSQL): a replica whose data directory
// holds another bootstrap's key file refuses to start, saying which
// bootstrap the database is; one whose key file is the database's own
// starts; the first one's key file is what the database took.
func TestReplicaOtherIdentity(t *testing.T) {
	db := pgtest.DB(t)
	ctx := t.Context()
	// Before any bootstrap stored its keys there, there is nothing to rotate.
	if _, err := bootstrap.RotateKeyRingAt(ctx, "", db, time.Now(), nil); !errors.Is(err, bootstrap.ErrConfig) || !strings.Contains(err.Error(), "no key ring") {
		t.Fatalf("rotating an empty database's keys: %v", err)
	}
	first := t.TempDir()
	mine, err := bootstrap.LoadKeyRing(first, nil) // a bootstrap from before, moving to PostgreSQL
	if err != nil {
		t.Fatal(err)
	}
	open := func(dir string) (*bootstrap.Service, error) {
		svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: dir, DB: db, HTTP: "127.0.0.1:0"})
		if err == nil {
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- svc.Serve(sctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			})
		}
		return svc, err
	}
	svc, err := open(first)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Keys.ID() != mine.ID() || !svc.Keys.Key().Equal(mine.Key()) {
		t.Fatalf("the first replica serves %s, not its key file's %s", svc.Keys.ID(), mine.ID())
	}
	if _, err := open(first); err != nil { // its own key file again: the same bootstrap
		t.Fatalf("a second replica with the same key file: %v", err)
	}

	other := t.TempDir()
	theirs, err := bootstrap.LoadKeyRing(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(other)
	if !errors.Is(err, bootstrap.ErrConfig) || !strings.Contains(err.Error(), mine.ID()) || !strings.Contains(err.Error(), theirs.ID()) {
		t.Fatalf("a replica with another bootstrap's key file: %v", err)
	}
	t.Logf("refused, as an operator reads it: %v", err)
	if _, err := open(t.TempDir()); err != nil { // no key file: takes the database's
		t.Fatal(err)
	}
}

// TestKeysStaySQLite: on SQLite the keys stay in the key file, and
// --rotate-key's path (RotateKeyRingAt without a PostgreSQL --db) rotates
// the file, which the running bootstrap picks up.
func TestKeysStaySQLite(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: dir, HTTP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	file, err := bootstrap.LoadKeyRing(dir, nil)
	if err != nil || file.ID() != svc.Keys.ID() || !file.Key().Equal(svc.Keys.Key()) {
		t.Fatalf("SQLite's bootstrap does not serve its key file: %v", err)
	}
	k, err := bootstrap.RotateKeyRingAt(ctx, dir, "", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := k.KeySet().Current()
	ks, err := (&api.Client{Base: svc.URL()}).Trust(ctx)
	if err != nil || len(ks.Keys) != 2 || !ks.Keys[0].Public.Equal(cur.Public) {
		t.Fatalf("after rotating the key file: %+v %v", ks.Keys, err)
	}
}
