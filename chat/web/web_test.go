package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/media/player"
)

const ownerToken = "owner-secret"

// isOwner is the test's owner check (the node's asks for loopback and its
// token; here the token is enough).
func isOwner(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bearer "+ownerToken || r.URL.Query().Get("owner") == ownerToken
}

// broadcasterRoom joins a real room, as the broadcaster, on a real host:
// the broadcaster's room knows its moderation state at once.
func broadcasterRoom(t *testing.T) *chat.Room {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.DisableMetrics()) // alone on its topic
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, chat.PubSubOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	room, err := chat.Join(ctx, ps, h, chat.Config{Broadcast: h.ID().String() + ".webtest", Broadcaster: h.ID()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = room.Close() })
	return room
}

// serve mounts s where the node mounts it: under a player page's chat/.
func serve(t *testing.T, s *web.Server) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/b/x/", http.StripPrefix("/b/x", player.New(player.Routes{Chat: s})))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL + "/b/x/chat/"
}

func do(t *testing.T, method, url, token string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

type event struct{ name, data string }

// stream opens the event stream and returns its events as they come; the
// channel closes when the stream ends.
func stream(t *testing.T, url string) <-chan event {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	ch := make(chan event, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var e event
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				e.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				e.data = line[len("data: "):]
			case line == "" && e.name != "":
				ch <- e
				e = event{}
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan event, name string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended waiting for %q", name)
			}
			if e.name == name {
				return e
			}
		case <-timeout:
			t.Fatalf("no %q event", name)
		}
	}
}

// TestNoRoom: without a room (the node could not join the chat) the API
// answers 404, but the page's script is served: it hides the chat when
// its stream fails.
func TestNoRoom(t *testing.T) {
	s := web.New(web.Config{Room: func() *chat.Room { return nil }, IsOwner: isOwner})
	url := serve(t, s)
	resp, err := http.Get(url + "chat.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(string(js), "window.peerscope") || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("chat.js: %s %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"log", "events", "moderation", "nope"} {
		if code, body := do(t, http.MethodGet, url+p, "", nil); code != 404 || !strings.Contains(body, "no chat on this broadcast") {
			t.Errorf("GET %s: %d %q", p, code, body)
		}
	}
	s.Run(context.Background(), func(time.Time) time.Time { t.Fatal("Run ticked without a room"); return time.Time{} }) // returns at once
}

// TestAPI drives the API over a real room: a comment from the page reaches
// the room (and comes back on the stream and in the log), the owner's
// moderation takes effect, and what is refused gets its status code.
func TestAPI(t *testing.T) {
	room := broadcasterRoom(t)
	clk := clock.NewFake(time.Now())
	s := web.New(web.Config{Room: func() *chat.Room { return room }, IsOwner: isOwner, Clock: clk})
	url := serve(t, s)
	ticks := make(chan struct{}, 16)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		s.Run(context.Background(), func(time.Time) time.Time { ticks <- struct{}{}; return time.Time{} })
	}()
	<-ticks // Run's first, before its ticker
	viewer, owner := stream(t, url+"events"), stream(t, url+"events?owner="+ownerToken)
	for s.Streams() < 2 {
		time.Sleep(time.Millisecond) // the streams' requests are on their way
	}

	// The live count, told to the new streams at the next tick: the
	// streams woke Run, within Every of its first tick, so it ticks Every
	// after that one (once it has re-armed: advance until it has).
	for deadline := time.Now().Add(20 * time.Second); ; {
		clk.Advance(web.DefaultEvery)
		select {
		case <-ticks:
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no tick in 20 s after the streams opened")
			}
			continue
		}
		break
	}
	if e := next(t, viewer, "viewers"); !strings.Contains(e.data, `"live":0`) {
		t.Fatalf("viewers event %s", e.data)
	}

	at := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	code, body := do(t, http.MethodPost, url+"comment", "", map[string]any{"text": "hello from the page", "at": at.UnixMilli()})
	if code != 200 || !strings.Contains(body, `"id":`) {
		t.Fatalf("comment: %d %s", code, body)
	}
	var c struct {
		ID     string `json:"id"`
		Text   string `json:"text"`
		At     int64  `json:"at"`
		Author struct {
			Broadcaster bool `json:"broadcaster"`
		} `json:"author"`
	}
	if err := json.Unmarshal([]byte(next(t, viewer, "comment").data), &c); err != nil ||
		c.Text != "hello from the page" || c.At != at.UnixMilli() || !c.Author.Broadcaster || !strings.Contains(body, c.ID) {
		t.Fatalf("comment event %+v (%v), posted %s", c, err, body)
	}
	if code, log := do(t, http.MethodGet, url+"log", "", nil); code != 200 || !strings.Contains(log, "hello from the page") {
		t.Fatalf("log: %d %s", code, log)
	}

	// Moderation is the owner's.
	if code, _ := do(t, http.MethodPost, url+"moderate", "", map[string]string{"op": "comments_off"}); code != 403 {
		t.Fatalf("moderate without the owner's token: %d", code)
	}
	if code, body := do(t, http.MethodPost, url+"moderate", ownerToken, map[string]string{"op": "comments_off"}); code != 204 {
		t.Fatalf("moderate: %d %s", code, body)
	}
	if e := next(t, viewer, "moderated"); !strings.Contains(e.data, `"op":"comments-off"`) || !strings.Contains(e.data, `"on":true`) {
		t.Fatalf("moderated event %s", e.data)
	}
	if code, m := do(t, http.MethodGet, url+"moderation", "", nil); code != 200 || !strings.Contains(m, `"comments_off":true`) {
		t.Fatalf("moderation: %d %s", code, m)
	}
	for _, c := range []struct {
		method, path, token string
		body                any
		code                int
	}{
		{http.MethodPost, "moderate", ownerToken, map[string]string{"op": "block", "target": "not a peer"}, 400},
		{http.MethodPost, "moderate", ownerToken, map[string]string{"op": "nothing"}, 400},
		{http.MethodPost, "moderate", ownerToken, map[string]string{"op": "delete", "target": "x/1"}, 400},
		{http.MethodPost, "report", "", map[string]string{"id": "nope"}, 400},
		{http.MethodPost, "vote", "", map[string]any{"call": "x", "guilty": true}, 400},
		{http.MethodPost, "vote", "", map[string]any{"call": "123", "guilty": true}, 404},
		{http.MethodPost, "comment", "", map[string]any{"text": "   "}, 400},
		{http.MethodPost, "comment", "", "not an object", 400},
		{http.MethodPost, "heart", "", map[string]int{"n": 3}, 204},
		{http.MethodGet, "viewers", "", nil, 200}, // every page lists who watches
		{http.MethodGet, "viewers", ownerToken, nil, 200},
		{http.MethodGet, "comment", "", nil, 405},
	} {
		if code, body := do(t, c.method, url+c.path, c.token, c.body); code != c.code {
			t.Errorf("%s %s %v: %d %s, want %d", c.method, c.path, c.body, code, body, c.code)
		}
	}

	// A body that does not say it is JSON is what any page can send: 415.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		req, _ := http.NewRequest(http.MethodPost, url+"heart", strings.NewReader(`{"n":5}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("a heart as %q: %s, want 415", ct, resp.Status)
		}
	}

	// Closing the room ends Run and every stream.
	if err := room.Close(); err != nil {
		t.Fatal(err)
	}
	<-ran
	for range owner {
	}
}

// TestEventStreamsPerClient: one client (one address) holds at most
// Config.StreamsPerClient event streams; more are refused with 429 until
// one ends.
func TestEventStreamsPerClient(t *testing.T) {
	room := broadcasterRoom(t)
	s := web.New(web.Config{Room: func() *chat.Room { return room }})
	url := serve(t, s) + "events"
	open := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cancel
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := range web.DefaultStreamsPerClient {
		resp, cancel := open()
		cancels = append(cancels, cancel)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s", i, resp.Status)
		}
	}
	resp, cancel := open()
	resp.Body.Close()
	cancel()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stream %d from one client: %s, want 429", web.DefaultStreamsPerClient+1, resp.Status)
	}
	cancels[0]()
	for s.Streams() >= web.DefaultStreamsPerClient {
		time.Sleep(time.Millisecond) // the handler sees its request end
	}
	resp, cancel = open()
	cancels = append(cancels, cancel)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a stream after one ended: %s", resp.Status)
	}
}
