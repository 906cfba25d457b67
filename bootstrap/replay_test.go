package bootstrap_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// recorder is an http.RoundTripper that keeps a copy of every request a
// client sends: what someone on the path (or a bootstrap itself) sees and
// could send again.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (rc *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r.Clone(context.Background()))
	rc.body = append(rc.body, b)
	rc.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// last returns the last request sent with the given method, as bytes to
// send again.
func (rc *recorder) last(method string) (*http.Request, []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := len(rc.reqs) - 1; i >= 0; i-- {
		if rc.reqs[i].Method == method {
			return rc.reqs[i], rc.body[i]
		}
	}
	return nil, nil
}

// replay sends a recorded request again, to base (another bootstrap, or the
// same one), with the very headers and body.
func replay(t *testing.T, r *http.Request, body []byte, base string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReplayToAnotherBootstrap: a community runs two bootstraps (or a
// bootstrap is evil): a request a node signed for one is sent, as it is,
// to the other within the clock skew. It names the bootstrap it is for, so
// the other refuses it and stores nothing.
func TestReplayToAnotherBootstrap(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		a, b := newEnv(t, nil), newEnv(t, nil)
		alice := a.node(1)
		rec := &recorder{}
		alice.c.HTTP = &http.Client{Transport: rec}
		id := alice.broadcastID("live")
		if _, err := alice.c.Announce(context.Background(), id, announcement(id, "for bootstrap A only", a.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		req, body := rec.last(http.MethodPut)
		if req == nil {
			t.Fatal("no announcement recorded")
		}
		status, answer := replay(t, req, body, b.url)
		if status != http.StatusUnauthorized {
			t.Fatalf("bootstrap B took A's request: %d %s", status, answer)
		}
		if n := b.count("broadcasts"); n != 0 {
			t.Fatalf("bootstrap B lists %d broadcasts after the replay", n)
		}
		if list, err := (&api.Client{Base: b.url}).List(context.Background(), api.Query{}); err != nil || len(list) != 0 {
			t.Fatalf("B's directory: %v %v", ids(list), err)
		}
	})
}
