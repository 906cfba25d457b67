package bootstrap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestMain stops the PostgreSQL test cluster, if a test started one.
func TestMain(m *testing.M) { pgtest.Main(m) }

// internalEnv is a Server over a real store and key ring, for the tests
// that look inside; the HTTP-level tests are in package bootstrap_test.
type internalEnv struct {
	s     *Server
	clock *clock.Fake
}

func newInternalEnv(t *testing.T, tweak func(*ServerConfig)) *internalEnv {
	t.Helper()
	dir := t.TempDir()
	keys, err := LoadKeyRing(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(context.Background(), pgtest.DBFor(t, filepath.Join(dir, DBFile)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.sealTokens(context.Background(), keys.secret); err != nil {
		t.Fatal(err)
	}
	c := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := ServerConfig{Store: st, Keys: keys, Now: c.Now}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &internalEnv{s: s, clock: c}
}

// signedRequest is a request signed now by the peer of the seed.
func (e *internalEnv) signedRequest(t *testing.T, method, path string, body []byte, seed byte) *http.Request {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if err := api.SignRequest(r, body, priv, e.s.cfg.Keys.ID(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return r
}
