package bootstrap_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFilesPrivate: the bootstrap's state — the database with its WAL and
// shared-memory files, the keys — is readable by its owner only, whatever
// the umask: it holds sessions, provider tokens and the follow graph.
func TestFilesPrivate(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice := e.node(1)
	e.signIn(alice, "100") // tokens, a session, an attestation: the WAL has them
	id := alice.broadcastID("live")
	if _, err := alice.c.Announce(ctx, id, announcement(id, "x", e.clock.Now(), 1)); err != nil {
		t.Fatal(err)
	}
	dir := e.svc.DataDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, de := range entries {
		fi, err := os.Stat(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		seen[de.Name()] = true
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others may read it", de.Name(), fi.Mode().Perm())
		}
	}
	for _, f := range []string{"bootstrap.db", "bootstrap.db-wal", "bootstrap.db-shm"} {
		if !seen[f] {
			t.Errorf("no %s in %s", f, dir)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory %v %v", fi.Mode(), err)
	}
}
