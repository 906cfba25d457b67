package bootstrap

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Provider tokens (X's access and refresh tokens, which can post as the
// account) are sealed at rest: AES-256-GCM under a key derived from the
// key file's secret (KeyFile, mode 0600 beside the database), bound to
// their account and column. A copy of the database alone gives no token;
// the running bootstrap opens them when it imports follows or posts.

// sealedPrefix marks a sealed value; a value without it is a plaintext
// token an older version stored, sealed on the next open (sealTokens).
const sealedPrefix = "sealed1:"

// tokenKeyInfo separates the token key from anything else derived from
// the secret.
const tokenKeyInfo = "peerscope/bootstrap/provider-tokens/1"

// errSealed is returned for a sealed token that does not open (another
// data directory's key, or a damaged row).
var errSealed = errors.New("bootstrap: a sealed provider token does not open")

type tokenSealer struct{ aead cipher.AEAD }

func newTokenSealer(secret []byte) (*tokenSealer, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, tokenKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: token key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: token key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: token key: %w", err)
	}
	return &tokenSealer{aead: aead}, nil
}

// ad binds a sealed value to its account and column: a sealed refresh
// token moved into another account's row does not open.
func tokenAD(account int64, column string) []byte {
	return []byte(tokenKeyInfo + "\x00" + strconv.FormatInt(account, 10) + "\x00" + column)
}

// seal seals a token for its account and column ("" stays "").
func (t *tokenSealer) seal(account int64, column, plain string) string {
	if plain == "" {
		return ""
	}
	nonce := make([]byte, t.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := t.aead.Seal(nonce, nonce, []byte(plain), tokenAD(account, column))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// open opens a sealed token; a value an older version stored in the clear
// is returned as it is.
func (t *tokenSealer) open(account int64, column, stored string) (string, error) {
	b64, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(b) < t.aead.NonceSize() {
		return "", errSealed
	}
	n := t.aead.NonceSize()
	plain, err := t.aead.Open(nil, b[:n], b[n:], tokenAD(account, column))
	if err != nil {
		return "", errSealed
	}
	return string(plain), nil
}

// sealTokens gives the store its token key and seals every token an older
// version kept in the clear, in one transaction.
func (s *Store) sealTokens(ctx context.Context, secret []byte) error {
	t, err := newTokenSealer(secret)
	if err != nil {
		return err
	}
	s.tokens = t
	return s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT account, access, refresh FROM provider_tokens
WHERE (access != '' AND access NOT LIKE 'sealed1:%') OR (refresh != '' AND refresh NOT LIKE 'sealed1:%')`)
		if err != nil {
			return fmt.Errorf("bootstrap: sealing tokens: %w", err)
		}
		type row struct {
			id              int64
			access, refresh string
		}
		var plain []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.access, &r.refresh); err != nil {
				rows.Close()
				return err
			}
			plain = append(plain, r)
		}
		rows.Close()
		for _, r := range plain {
			a, _ := t.open(r.id, "access", r.access)
			f, _ := t.open(r.id, "refresh", r.refresh)
			// Only what was read is sealed: a replica running on the same
			// database may have sealed or refreshed the tokens meanwhile.
			if _, err := tx.ExecContext(ctx, `UPDATE provider_tokens SET access = ?, refresh = ? WHERE account = ? AND access = ? AND refresh = ?`,
				t.seal(r.id, "access", a), t.seal(r.id, "refresh", f), r.id, r.access, r.refresh); err != nil {
				return fmt.Errorf("bootstrap: sealing tokens: %w", err)
			}
		}
		return nil
	})
}
