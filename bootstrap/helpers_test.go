package bootstrap_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/bootstrap/xstandin"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// codes records the phone codes "sent" (the SMS network is outside the
// system under test).
type codes struct {
	mu   sync.Mutex
	last map[string]string
	n    int
}

func (c *codes) SendCode(_ context.Context, phone, code string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = make(map[string]string)
	}
	c.last[phone] = code
	c.n++
	return nil
}

func (c *codes) code(phone string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[phone]
}

// env is a bootstrap with a stand-in X, both real HTTP servers on
// loopback.
type env struct {
	t     *testing.T
	clock *clock.Fake // the tests' injected clock
	x     *xstandin.Provider
	xsrv  *httptest.Server
	svc   *bootstrap.Service
	db    string // the store's database (a file, or a PostgreSQL URL)
	dir   string // the data directory (keys)
	url   string
	codes *codes
	live  chan bootstrap.Event
	sc    bootstrap.ServiceConfig // as opened (replicas open the same)
}

const (
	clientID     = "peerscope-test"
	clientSecret = "s3cret"
)

func newEnv(t *testing.T, tweak func(*bootstrap.ServerConfig)) *env {
	t.Helper()
	return newEnvOn(t, "", tweak)
}

// newReplica is another replica of of's bootstrap: the same database
// (PostgreSQL, whose key ring they share), a data directory, process
// state and HTTP server of its own.
func newReplica(t *testing.T, of *env, tweak func(*bootstrap.ServerConfig)) *env {
	t.Helper()
	return newEnvOn(t, of.db, tweak)
}

// newEnvOn is newEnv on the database db ("": the one newEnv picks), with
// a data directory of its own: replicas, when two share a PostgreSQL db.
func newEnvOn(t *testing.T, db string, tweak func(*bootstrap.ServerConfig)) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), codes: &codes{}, live: make(chan bootstrap.Event, 16)}
	// The bootstrap's address is needed for the redirect URI before the
	// provider is built: listen first.
	ctx, cancel := context.WithCancel(context.Background())
	sc := bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0"}
	// Under pgtest.Each's "postgres" subtest, a PostgreSQL database.
	if sc.DB = db; db == "" {
		sc.DB = pgtest.DBFor(t, filepath.Join(sc.DataDir, bootstrap.DBFile))
	}
	e.db, e.dir = sc.DB, sc.DataDir
	var x *xstandin.Provider
	e.xsrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { x.ServeHTTP(w, r) }))
	t.Cleanup(e.xsrv.Close)
	sc.Server = bootstrap.ServerConfig{
		Twitter: bootstrap.TwitterConfig{ClientID: clientID, ClientSecret: clientSecret,
			AuthorizeURL: e.xsrv.URL + "/i/oauth2/authorize", TokenURL: e.xsrv.URL + "/2/oauth2/token", APIURL: e.xsrv.URL + "/2"},
		Phone:       e.codes,
		Now:         e.clock.Now,
		RateIP:      bootstrap.Rate{PerSecond: -1},
		RatePeer:    bootstrap.Rate{PerSecond: -1},
		RateAccount: bootstrap.Rate{PerSecond: -1},
		OnLive: func(ev bootstrap.Event) {
			select { // OnLive must not block
			case e.live <- ev:
			default:
			}
		},
		// Requests may say, in X-Forwarded-For, which address they come
		// from (node.from): tests play clients on several networks.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	if tweak != nil {
		tweak(&sc.Server)
	}
	e.sc = sc
	svc, err := bootstrap.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, e.url = svc, svc.URL()
	x = xstandin.New(xstandin.Config{ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{e.url + "/api/v1/auth/twitter/callback"}, Now: e.clock.Now})
	e.x = x
	x.AddUser(xstandin.User{ID: "100", Username: "alice", Name: "Alice Example", ProfileImageURL: "https://pbs.example/alice.png"})
	x.AddUser(xstandin.User{ID: "200", Username: "bob", Name: "Bob"})
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// node is a node's identity and its API client.
type node struct {
	key crypto.PrivKey
	id  peer.ID
	c   *api.Client
}

func (e *env) node(seed byte) *node {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	return &node{key: priv, id: id, c: &api.Client{Base: e.url, Key: priv, Now: e.clock.Now}}
}

// from makes n's requests come from addr (as a trusted proxy would say).
func (n *node) from(addr string) *node {
	n.c.HTTP = &http.Client{Transport: forwardedFor(addr)}
	return n
}

type forwardedFor string

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(f))
	return http.DefaultTransport.RoundTrip(r)
}

// count returns the rows of a table.
func (e *env) count(table string) int {
	e.t.Helper()
	n, err := e.svc.Store.Count(context.Background(), table)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// raw sends a request, signed by n when n is not nil, and returns the
// status and the error code of the JSON answer.
func (e *env) raw(n *node, method, path, ctype string, body []byte) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if n != nil {
		if err := api.SignRequest(req, body, n.key, e.svc.Keys.ID(), e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ae struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(b, &ae)
	if resp.StatusCode/100 != 2 && ae.Error.Message == "" {
		e.t.Errorf("%s %s: %d without a JSON error: %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, ae.Error.Code
}

// apiStatus returns the HTTP status of a client error (0 for nil).
func apiStatus(err error) (int, string) {
	var ae *api.APIError
	if errors.As(err, &ae) {
		return ae.Status, ae.Code
	}
	if err != nil {
		return -1, err.Error()
	}
	return 0, ""
}

func mustStatus(t *testing.T, err error, status int, code string) {
	t.Helper()
	s, c := apiStatus(err)
	if s != status || (code != "" && c != code) {
		t.Fatalf("got %d %s (%v), want %d %s", s, c, err, status, code)
	}
}

var _ = fmt.Sprint

func xUser(id, name string) xstandin.User {
	return xstandin.User{ID: id, Username: name, Name: name}
}

func ioNopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func testPeerID(t *testing.T, seed byte) peer.ID {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	return id
}
