package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// onPostgres runs f as a "postgres" subtest only: replicas share one
// PostgreSQL database (a SQLite file has one process).
func onPostgres(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		if pgtest.Skipped() {
			t.Skipf("PostgreSQL tests skipped (%s=1)", pgtest.SkipEnv)
		}
		f(t)
	})
}

// replica opens another bootstrap on e's database, as a community runs
// several behind one name: its own listener, connections and memory, the
// same identity key (copied into its own data directory) and the same
// public URL, so that a sign-in X sends back to "the" bootstrap may land
// on either. The clock, the stand-in X and the phone network are e's.
func (e *env) replica() *env {
	t := e.t
	t.Helper()
	key, err := os.ReadFile(filepath.Join(e.svc.DataDir(), bootstrap.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	r := *e
	r.sc.DataDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(r.sc.DataDir, bootstrap.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	r.sc.Server.PublicURL = e.url
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := bootstrap.Open(ctx, r.sc)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if svc.Keys.ID() != e.svc.Keys.ID() {
		t.Fatalf("replica's ID %s, want %s", svc.Keys.ID(), e.svc.Keys.ID())
	}
	r.svc, r.url = svc, svc.URL()
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica's Serve: %v", err)
		}
	})
	return &r
}

// TestNonceAcrossReplicas: a signed request taken by one replica and sent
// again, as it was, to another (within the clock skew, the same
// bootstrap ID) is refused there and changes nothing: the shared table of
// nonces, not a process's memory, says whether a nonce was used. Each kind
// of durable insert: alone before the request is acted on (a sign-in's
// start), in an announcement's group commit, in a roster's transaction.
func TestNonceAcrossReplicas(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		a := newEnv(t, nil)
		b := a.replica()
		ctx := context.Background()
		alice := a.node(1)
		a.signIn(alice, "100")
		rec := &recorder{}
		alice.c.HTTP = &http.Client{Transport: rec}

		if _, err := alice.c.TwitterStart(ctx, "http://127.0.0.1:8080/directory/"); err != nil {
			t.Fatal(err)
		}
		states := a.count("oauth_states")
		req, body := rec.last(http.MethodPost)
		refused(t, req, body, b.url, "replica B took A's sign-in start")
		if n := a.count("oauth_states"); n != states {
			t.Errorf("%d OAuth states after the replay, want %d", n, states)
		}

		id := alice.broadcastID("live")
		if _, err := alice.c.Announce(ctx, id, privateAnnouncement(id, "first", a.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		req, body = rec.last(http.MethodPut)
		refused(t, req, body, b.url, "replica B took A's announcement")

		if _, err := alice.c.PutRoster(ctx, id, a.roster(alice, id, 1)); err != nil {
			t.Fatal(err)
		}
		req, body = rec.last(http.MethodPut)
		refused(t, req, body, b.url, "replica B took A's roster")

		// And the other way: what B took, A refuses; a fresh request goes
		// through either.
		alice.c.Base = b.url
		if _, err := alice.c.Announce(ctx, id, privateAnnouncement(id, "second", a.clock.Now(), 2)); err != nil {
			t.Fatal(err)
		}
		req, body = rec.last(http.MethodPut)
		refused(t, req, body, a.url, "replica A took B's announcement")
	})
}

// refused sends a recorded signed request again to base and wants it
// refused as a replay (401 unauthenticated).
func refused(t *testing.T, req *http.Request, body []byte, base, what string) {
	t.Helper()
	status, answer := replay(t, req, body, base)
	if status != http.StatusUnauthorized || !strings.Contains(answer, "nonce used before") {
		t.Errorf("%s again: %d %s", what, status, answer)
	}
}

// TestSignInAcrossReplicas: whatever replica each step of a sign-in lands
// on, it works, and once only. With X: started on A, X's callback (to the
// community's one name) answered by B, the code redeemed on A and refused
// on B. By phone: the code sent by A, verified on B.
func TestSignInAcrossReplicas(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		a := newEnv(t, nil)
		b := a.replica()
		ctx := context.Background()
		alice := a.node(1)
		const page = "http://127.0.0.1:8080/directory/"
		start, err := alice.c.TwitterStart(ctx, page, "follows")
		if err != nil {
			t.Fatal(err)
		}
		browser := stopAtCallback(t)
		resp, _ := get(t, browser, start.AuthorizeURL+"&login=100")
		callback := resp.Header.Get("Location")
		if !strings.HasPrefix(callback, a.url+"/api/v1/auth/twitter/callback?") {
			t.Fatalf("X sends the browser to %q, want the community's callback", callback)
		}
		// The balancer hands the callback to B.
		resp, body := get(t, browser, b.url+strings.TrimPrefix(callback, a.url))
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), page+"#signin=") {
			t.Fatalf("callback on B: %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		code := strings.TrimPrefix(loc.Fragment, "signin=")
		res, err := alice.c.TwitterFinish(ctx, code)
		if err != nil || res.Account.Key() != "twitter:100" {
			t.Fatalf("redeemed on A: %+v %v", res.Account, err)
		}
		onB := &api.Client{Base: b.url, Key: alice.key, Now: a.clock.Now}
		_, err = onB.TwitterFinish(ctx, code)
		mustStatus(t, err, http.StatusBadRequest, "invalid_code")
		if n := a.count("attestations"); n != 1 {
			t.Fatalf("%d attestations after redeeming on A and B, want 1", n)
		}
		// The session A opened is B's too.
		if s, err := onB.Sessions(ctx); err != nil || len(s.Sessions) != 1 {
			t.Fatalf("alice's sessions as B sees them: %+v %v", s, err)
		}

		bob := a.node(2)
		const phone = "+15550123"
		if err := bob.c.PhoneStart(ctx, phone); err != nil {
			t.Fatal(err)
		}
		bob.c.Base = b.url
		res, err = bob.c.PhoneVerify(ctx, phone, a.codes.code(phone))
		if err != nil || res.Account.Provider != "phone" {
			t.Fatalf("verified on B: %+v %v", res.Account, err)
		}
		// The code is spent on both.
		bob.c.Base = a.url
		_, err = bob.c.PhoneVerify(ctx, phone, a.codes.code(phone))
		if s, _ := apiStatus(err); s/100 != 4 {
			t.Fatalf("the spent code again on A: %v", err)
		}
	})
}

// TestRateLimitsShared: with two replicas, each allows a peer half of
// the rate and burst, so the two together allow what one bootstrap would.
func TestRateLimitsShared(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		a := newEnv(t, func(c *bootstrap.ServerConfig) {
			c.Replicas = 2
			c.RatePeer = bootstrap.Rate{PerSecond: 1e-6, Burst: 4} // the fake clock stands still: no refill
		})
		b := a.replica()
		ctx := context.Background()
		alice := a.node(1)
		for _, r := range []*env{a, b} {
			alice.c.Base = r.url
			for i := range 3 {
				_, err := alice.c.TwitterStart(ctx, "")
				if i < 2 && err != nil {
					t.Fatalf("request %d to %s: %v", i, r.url, err)
				}
				if i == 2 {
					mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
				}
			}
		}
	})
}

// TestReplicasNeedPostgres: replicas of a SQLite file are refused before
// anything is made.
func TestReplicasNeedPostgres(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := bootstrap.Open(context.Background(), bootstrap.ServiceConfig{DataDir: dir, HTTP: "127.0.0.1:0", Server: bootstrap.ServerConfig{Replicas: 2}})
	if !errors.Is(err, bootstrap.ErrConfig) || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("Open with 2 replicas on SQLite: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the data directory was made: %v", err)
	}
}

// TestNonceRaceAcrossReplicas: one signed request sent to two replicas at
// the same instant is taken by one of them only.
func TestNonceRaceAcrossReplicas(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		a := newEnv(t, nil)
		b := a.replica()
		alice := a.node(1)
		body, err := json.Marshal(api.TwitterStart{})
		if err != nil {
			t.Fatal(err)
		}
		twice := 0
		const rounds = 20
		for range rounds {
			req, err := http.NewRequest(http.MethodPost, "/api/v1/auth/twitter/start", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if err := api.SignRequest(req, body, alice.key, a.svc.Keys.ID(), a.clock.Now()); err != nil {
				t.Fatal(err)
			}
			var ok atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, base := range []string{a.url, b.url} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, _ := http.NewRequest(http.MethodPost, base+req.URL.RequestURI(), bytes.NewReader(body))
					r.Header = req.Header.Clone()
					<-start
					resp, err := http.DefaultClient.Do(r)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						ok.Add(1)
					case http.StatusUnauthorized:
					default:
						t.Errorf("%s: %d", base, resp.StatusCode)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 {
				twice++
			}
		}
		if twice > 0 {
			t.Fatalf("not taken exactly once in %d of %d rounds", twice, rounds)
		}
	})
}
