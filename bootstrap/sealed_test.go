package bootstrap

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestSealTokensMigrates: tokens an older version kept in the clear are
// sealed when the store is opened with its key, and still read back; a
// sealed token does not open under another key or in another account's
// row.
func TestSealTokensMigrates(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st, err := OpenStore(ctx, pgtest.DBFor(t, filepath.Join(t.TempDir(), DBFile)))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		a, err := st.UpsertAccount(ctx, Account{Account: accountOf("twitter", "100")}, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := st.UpsertAccount(ctx, Account{Account: accountOf("twitter", "200")}, now)
		if _, err := st.w.ExecContext(ctx, `INSERT INTO provider_tokens (account, access, refresh, scopes) VALUES (?, 'plain-access', 'plain-refresh', 'tweet.write')`, a.ID); err != nil {
			t.Fatal(err)
		}
		secret := bytes.Repeat([]byte{7}, 32)
		if err := st.sealTokens(ctx, secret); err != nil {
			t.Fatal(err)
		}
		var access, refresh string
		_ = st.r.QueryRowContext(ctx, `SELECT access, refresh FROM provider_tokens WHERE account = ?`, a.ID).Scan(&access, &refresh)
		if !strings.HasPrefix(access, sealedPrefix) || !strings.HasPrefix(refresh, sealedPrefix) || strings.Contains(access+refresh, "plain") {
			t.Fatalf("not sealed: %q %q", access, refresh)
		}
		tok, err := st.Tokens(ctx, a.ID)
		if err != nil || tok.Access != "plain-access" || tok.Refresh != "plain-refresh" || tok.Scopes != "tweet.write" {
			t.Fatalf("read back %+v %v", tok, err)
		}
		// Moved to another account's row: refused.
		if _, err := st.w.ExecContext(ctx, `INSERT INTO provider_tokens (account, access, refresh) VALUES (?, ?, ?)`, b.ID, access, refresh); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Tokens(ctx, b.ID); err == nil {
			t.Fatal("a sealed token opened in another account's row")
		}
		// Another key: refused.
		other, _ := newTokenSealer(bytes.Repeat([]byte{8}, 32))
		st.tokens = other
		if _, err := st.Tokens(ctx, a.ID); err == nil {
			t.Fatal("a sealed token opened under another key")
		}
	})
}

func accountOf(provider, subject string) (a api.Account) {
	a.Provider, a.Subject = provider, subject
	return a
}
