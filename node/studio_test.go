package node_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/node"
)

// TestStudioRoutes: the go-live page's stream key opens its broadcast's
// links, the reads of its chat (as the owner's, viewer names included) and
// its moderation under /broadcast/, and nothing else: no key or a wrong
// one gets WHIP's 401, another site's page and a form are refused, and
// the key does not comment in the node's name.
func TestStudioRoutes(t *testing.T) {
	n := newNode(t, node.Config{})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "studio", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{}
	defer c.CloseIdleConnections()
	base, key := n.HTTPURL()+"/broadcast/", b.StreamKey()

	code, hdr, body := goLiveCall{method: "GET", url: base + "live", key: key}.do(t, c)
	var live struct {
		ID, Title, Link, Web, Player, Replay string
		Ended                                bool
	}
	if err := json.Unmarshal([]byte(body), &live); err != nil || code != http.StatusOK || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET live: %d %s (%v)", code, body, err)
	}
	if live.ID != b.ID() || live.Title != "studio" || live.Link != b.Link().String() || live.Player != b.URLs().Player || live.Web != "" ||
		live.Replay != "" || live.Ended { // no replay before the end
		t.Errorf("GET live: %+v", live)
	}
	waitFor(t, 10*time.Second, "the viewer list", func() bool {
		code, _, body := goLiveCall{method: "GET", url: base + "chat/viewers", key: key}.do(t, c)
		return code == http.StatusOK && strings.Contains(body, `"live"`)
	})

	for _, tc := range []struct {
		name string
		q    goLiveCall
		want int
	}{
		{"no key", goLiveCall{method: "GET", url: base + "live"}, http.StatusUnauthorized},
		{"a wrong key", goLiveCall{method: "GET", url: base + "chat/viewers", key: "nope"}, http.StatusUnauthorized},
		{"a wrong key, events", goLiveCall{method: "GET", url: base + "chat/events", key: "nope"}, http.StatusUnauthorized},
		{"another site's page", goLiveCall{method: "GET", url: base + "chat/log", key: key, origin: "http://evil.example"}, http.StatusForbidden},
		{"moderation with a wrong key", goLiveCall{method: "POST", url: base + "chat/moderate", key: "nope", contentType: "application/json",
			body: `{"op":"comments_off"}`}, http.StatusUnauthorized},
		{"moderation by a form", goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/x-www-form-urlencoded",
			body: `op=comments_off`}, http.StatusUnsupportedMediaType},
		{"moderation from another site's page", goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/json",
			body: `{"op":"comments_off"}`, origin: "http://evil.example"}, http.StatusForbidden},
		{"the moderation state with a wrong key", goLiveCall{method: "GET", url: base + "chat/moderation", key: "nope"}, http.StatusUnauthorized},
		{"moderation, not JSON", goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/json",
			body: `{"op":`}, http.StatusBadRequest},
		{"moderation, an unknown field", goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/json",
			body: `{"op":"comments_off","mood":"grumpy"}`}, http.StatusBadRequest},
		{"moderation, an unknown op", goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/json",
			body: `{"op":"shout"}`}, http.StatusBadRequest},
		{"a comment", goLiveCall{method: "POST", url: base + "chat/comment", key: key, contentType: "application/json",
			body: `{"text":"hi"}`}, http.StatusMethodNotAllowed},
	} {
		if code, _, body := tc.q.do(t, c); code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.want)
		}
	}

	// The key moderates: comments off, then on again; the moderation state
	// says so each time (the studio shows it, and the way to undo it).
	for _, op := range []string{"comments_off", "comments_on"} {
		q := goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/json", body: `{"op":"` + op + `"}`}
		if code, _, body := q.do(t, c); code != http.StatusNoContent {
			t.Errorf("%s: %d %q", op, code, body)
		}
		code, _, body := goLiveCall{method: "GET", url: base + "chat/moderation", key: key}.do(t, c)
		var m struct {
			CommentsOff bool `json:"comments_off"`
		}
		if err := json.Unmarshal([]byte(body), &m); err != nil || code != http.StatusOK || m.CommentsOff != (op == "comments_off") {
			t.Errorf("the moderation state after %s: %d %s (%v)", op, code, body, err)
		}
	}
	// Followers only without a list asks the node whom its account follows:
	// with no bootstrap it cannot know, and says so; nothing changes.
	q := goLiveCall{method: "POST", url: base + "chat/moderate", key: key, contentType: "application/json", body: `{"op":"followers_only"}`}
	if code, _, body := q.do(t, c); code != http.StatusConflict || !strings.Contains(body, "no bootstrap") {
		t.Errorf("followers only without a bootstrap: %d %q", code, body)
	}
	if _, _, body := (goLiveCall{method: "GET", url: base + "chat/moderation", key: key}).do(t, c); strings.Contains(body, `"followers_only":true`) {
		t.Errorf("a refused followers only changed the state: %s", body)
	}

	// The event stream opens with the key in a header, as the page reads it.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"chat/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || first != ": chat\n" {
		t.Fatalf("events: %s %q %q (%v)", resp.Status, resp.Header.Get("Content-Type"), first, err)
	}
}

// TestStudioWebLink: with a bootstrap, the go-live page's link to share is
// the bootstrap's web link, the one the node's directory page sends a
// browser to.
func TestStudioWebLink(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "studio", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	code, _, body := goLiveCall{method: "GET", url: n.HTTPURL() + "/broadcast/live", key: b.StreamKey()}.do(t, c)
	var live struct{ Web string }
	if err := json.Unmarshal([]byte(body), &live); err != nil || code != http.StatusOK {
		t.Fatalf("GET live: %d %s (%v)", code, body, err)
	}
	want := strings.TrimSuffix(svc.URL(), "/") + "/w/" + b.ID() + "/"
	if live.Web != want {
		t.Errorf("web link %q, want %q", live.Web, want)
	}
	code, hdr, _ := goLiveCall{method: "GET", url: n.HTTPURL() + "/directory/w/" + b.ID() + "/"}.do(t, c)
	if code != http.StatusFound || hdr.Get("Location") != want {
		t.Errorf("the directory's web link: %d to %q, want %q", code, hdr.Get("Location"), want)
	}
}

// TestStudioFollowersOnly: with a bootstrap, "followers only" from the
// studio (which sends no list) limits comments to the accounts the node's
// account follows there; signed out it is refused with what to do, and
// following nobody it is refused rather than silencing everyone.
func TestStudioFollowersOnly(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "studio", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{}
	defer c.CloseIdleConnections()
	base, key := n.HTTPURL()+"/broadcast/chat/", b.StreamKey()
	on := goLiveCall{method: "POST", url: base + "moderate", key: key, contentType: "application/json", body: `{"op":"followers_only"}`}
	state := func() (m struct {
		FollowersOnly bool     `json:"followers_only"`
		Follows       []string `json:"follows"`
	}) {
		t.Helper()
		code, _, body := goLiveCall{method: "GET", url: base + "moderation", key: key}.do(t, c)
		if err := json.Unmarshal([]byte(body), &m); err != nil || code != http.StatusOK {
			t.Fatalf("GET moderation: %d %s (%v)", code, body, err)
		}
		return m
	}

	if code, _, body := on.do(t, c); code != http.StatusConflict || !strings.Contains(body, "sign in") {
		t.Errorf("followers only, signed out: %d %q", code, body)
	}
	signIn(t, n, "100")
	if code, _, body := on.do(t, c); code != http.StatusConflict || !strings.Contains(body, "follow nobody") {
		t.Errorf("followers only, following nobody: %d %q", code, body)
	}
	if m := state(); m.FollowersOnly {
		t.Fatalf("a refused followers only is in force: %+v", m)
	}
	follow(t, svc, n, "twitter:300")
	if code, _, body := on.do(t, c); code != http.StatusNoContent {
		t.Fatalf("followers only: %d %q", code, body)
	}
	if m := state(); !m.FollowersOnly || strings.Join(m.Follows, ",") != "twitter:300" {
		t.Errorf("after followers only: %+v", m)
	}
	off := goLiveCall{method: "POST", url: base + "moderate", key: key, contentType: "application/json", body: `{"op":"followers_off"}`}
	if code, _, body := off.do(t, c); code != http.StatusNoContent {
		t.Fatalf("followers off: %d %q", code, body)
	}
	if m := state(); m.FollowersOnly {
		t.Errorf("after followers off: %+v", m)
	}
}

// TestStudioLocation: the studio puts a live broadcast on the directory's
// map (PUT /broadcast/location with the stream key); the node's listing
// carries it, rounded to 0.1°, to the bootstrap; a point off the map, or
// not numbers, is refused with what is wrong and changes nothing; null
// takes it off the map.
func TestStudioLocation(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: 200 * time.Millisecond})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "studio map", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	publishWHIP(t, b.URLs().WHIP, b.StreamKey()) // listed once video flows
	c := &http.Client{}
	defer c.CloseIdleConnections()
	url, key := n.HTTPURL()+"/broadcast/location", b.StreamKey()
	anyone := &api.Client{Base: svc.URL()}
	listed := func(want *api.Location) func() bool {
		return func() bool {
			l, err := anyone.Broadcast(t.Context(), b.ID())
			if err != nil {
				return false
			}
			if want == nil {
				return l.Location == nil
			}
			return l.Location != nil && *l.Location == *want
		}
	}
	waitFor(t, 30*time.Second, "the broadcast listed, off the map", listed(nil))

	code, _, body := goLiveCall{method: "PUT", url: url, key: key, contentType: "application/json", body: `{"location":{"lat":51.5072,"lon":-0.1276}}`}.do(t, c)
	if code != http.StatusOK || !strings.Contains(body, `"lat":51.5,"lon":-0.1`) {
		t.Fatalf("PUT location: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the listing at 51.5,-0.1", listed(&api.Location{Lat: 51.5, Lon: -0.1}))
	code, _, body = goLiveCall{method: "GET", url: n.HTTPURL() + "/broadcast/live", key: key}.do(t, c)
	if code != http.StatusOK || !strings.Contains(body, `"location":{"lat":51.5,"lon":-0.1}`) {
		t.Errorf("GET live: %d %s", code, body)
	}

	for _, tc := range []struct{ body, say string }{
		{`{"location":{"lat":95,"lon":0}}`, "between -90 and 90"},
		{`{"location":{"lat":0,"lon":-181}}`, "between -180 and 180"},
		{`{"location":{"lat":"north","lon":0}}`, "cannot unmarshal"},
		{`{"location":{"lon":3}}`, "both lat and lon"},
		{`{"where":"here"}`, "unknown field"},
	} {
		code, _, body := goLiveCall{method: "PUT", url: url, key: key, contentType: "application/json", body: tc.body}.do(t, c)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.say) {
			t.Errorf("PUT %s: %d %s, want 400 saying %q", tc.body, code, body, tc.say)
		}
	}
	if code, _, _ := (goLiveCall{method: "PUT", url: url, key: "nope", contentType: "application/json", body: `{"location":null}`}.do(t, c)); code != http.StatusUnauthorized {
		t.Errorf("a wrong key: %d", code)
	}
	code, _, body = goLiveCall{method: "GET", url: n.HTTPURL() + "/broadcast/live", key: key}.do(t, c)
	if !strings.Contains(body, `"location":{"lat":51.5,"lon":-0.1}`) {
		t.Errorf("after refusals: %d %s", code, body)
	}

	if code, _, body := (goLiveCall{method: "PUT", url: url, key: key, contentType: "application/json", body: `{"location":null}`}.do(t, c)); code != http.StatusOK {
		t.Fatalf("PUT null: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the listing off the map", listed(nil))
}
