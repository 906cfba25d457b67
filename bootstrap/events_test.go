package bootstrap_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestPublicStreamHidesFollowers: the public event stream is for anyone;
// a broadcaster's followers are the bootstrap's to know (and the go-live
// hook's, which notifies them), never the stream's. Bob follows alice;
// alice goes live; the public stream's event names neither bob's account
// nor a followers field.
func TestPublicStreamHidesFollowers(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		if err := bob.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/events", nil)
		public := openSSE(t, req)
		id := alice.broadcastID("live")
		if _, err := alice.c.Announce(ctx, id, announcement(id, "Going live", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		var data string
		for public.sc.Scan() {
			if d, ok := strings.CutPrefix(public.sc.Text(), "data: "); ok {
				data = d
				break
			}
		}
		if !strings.Contains(data, id) {
			t.Fatalf("no go-live event on the public stream: %q", data)
		}
		if strings.Contains(data, "followers") || strings.Contains(data, "twitter:200") {
			t.Fatalf("the public stream tells who follows the broadcaster: %s", data)
		}
		// The hook still hears them: it is how followers' nodes are told.
		select {
		case ev := <-e.live:
			if len(ev.Followers) != 1 || ev.Followers[0] != "twitter:200" {
				t.Fatalf("go-live hook: followers %v", ev.Followers)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the go-live hook heard nothing")
		}
	})
}

// TestSecurityHeaders: every answer of the bootstrap, its pages and its
// API, forbids framing, sniffing and loading from elsewhere, and sends no
// Referer.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/", "/directory.js", "/api/v1/info", "/api/v1/nope"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, h)
		}
	}
}
