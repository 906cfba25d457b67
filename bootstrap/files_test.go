package bootstrap_test

import (
	"context"
	"database/sql"
	"net/http"
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

// TestTokensEncrypted: the X tokens the bootstrap keeps (to import follows
// and post when a broadcaster opted in) are sealed with a key derived from
// the data directory's key file: a copy of the database alone gives no
// token X would take, and the bootstrap itself still posts with them.
func TestTokensEncrypted(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice := e.node(1)
	e.signIn(alice, "100", "tweet")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.svc.DataDir(), "bootstrap.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var access, refresh string
	if err := db.QueryRow(`SELECT access, refresh FROM provider_tokens`).Scan(&access, &refresh); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{access, refresh} {
		req, _ := http.NewRequest(http.MethodGet, e.xsrv.URL+"/2/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("the database holds a token X accepts: %q", tok)
		}
	}
	if access == "" || refresh == "" {
		t.Fatalf("no tokens kept: %q %q", access, refresh)
	}
	// The bootstrap still uses them: the opt-in post goes out.
	id := alice.broadcastID("live")
	a := announcement(id, "sealed", e.clock.Now(), 1)
	a.Tweet = true
	res, err := alice.c.Announce(ctx, id, a)
	if err != nil || res.Tweeted == "" {
		t.Fatalf("no tweet with the sealed tokens: %+v %v", res, err)
	}
}
