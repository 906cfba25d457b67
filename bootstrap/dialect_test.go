package bootstrap

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/pgtest"
)

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT a FROM t WHERE b = ? AND c > ?`, `SELECT a FROM t WHERE b = $1 AND c > $2`},
		{`DELETE FROM b WHERE x = ?1 AND y = ?2 AND z NOT IN (SELECT z FROM b WHERE x = ?1 LIMIT ?3)`,
			`DELETE FROM b WHERE x = $1 AND y = $2 AND z NOT IN (SELECT z FROM b WHERE x = $1 LIMIT $3)`},
		{`SELECT '?', "a?b", ? -- what? it's
FROM t WHERE x LIKE ? ESCAPE '\'`, `SELECT '?', "a?b", $1 -- what? it's
FROM t WHERE x LIKE $2 ESCAPE '\'`},
		{`SELECT 'it''s ?' , ?`, `SELECT 'it''s ?' , $1`},
		{`no placeholders`, `no placeholders`},
	} {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestMigrations: a new database gets every migration, once (opening it
// again applies none), on both backends; on PostgreSQL the columns SQLite
// kept 64-bit (Unix ns) and its 8-byte REALs stay so.
func TestMigrations(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		db := pgtest.DBFor(t, filepath.Join(t.TempDir(), DBFile))
		for range 2 {
			st, err := OpenStore(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			v, err := st.SchemaVersion(ctx)
			if err != nil || v != len(migrations) {
				t.Fatalf("schema version %d %v, want %d", v, err, len(migrations))
			}
			var n int
			if err := st.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations`).Scan(&n); err != nil || n != len(migrations) {
				t.Fatalf("%d migrations recorded (%v), want %d", n, err, len(migrations))
			}
			st.Close()
		}
		st, err := OpenStore(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		far := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC) // near int64 ns's end
		a, err := st.UpsertAccount(ctx, Account{Account: accountOf("twitter", "1")}, far)
		if err != nil {
			t.Fatal(err)
		}
		lat := 48.856613 // a double, not a float32
		if _, err := st.w.ExecContext(ctx, `INSERT INTO broadcasts (id, broadcaster, account, link, started, version, updated, signed, lat, lon, private)
VALUES ('b.1', 'b', ?, 'l', ?, ?, ?, ?, ?, ?, ?)`, a.ID, far.UnixNano(), int64(math.MaxInt64), far.UnixNano(), []byte{1}, lat, lat, true); err != nil {
			t.Fatal(err)
		}
		var started, version int64
		var gotLat float64
		var private bool
		if err := st.r.QueryRowContext(ctx, `SELECT started, version, lat, private FROM broadcasts WHERE id = 'b.1'`).Scan(&started, &version, &gotLat, &private); err != nil {
			t.Fatal(err)
		}
		if started != far.UnixNano() || version != math.MaxInt64 || gotLat != lat || !private {
			t.Fatalf("read back %d %d %v %v", started, version, gotLat, private)
		}
	})
}

// TestPostgresURLRefused: a --db URL that is not one is refused clearly,
// and a server that is not there too, before anything is stored.
func TestPostgresURLRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := OpenStore(ctx, "postgres://u:secret@host:notaport/db"); err == nil {
		t.Fatal("a bad URL opened")
	} else if strings.Contains(err.Error(), "secret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if _, err := OpenStore(ctx, "postgres://u@127.0.0.1:1/db?connect_timeout=5"); err == nil {
		t.Fatal("a server that is not there opened")
	}
}
