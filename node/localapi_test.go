package node_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/node"
)

// The local API is driven by the owner's pages only: these tests play the
// other callers (another site through the owner's browser, a DNS-rebinding
// page, a LAN device on the HTTPS listener) and check that the node acts
// for none of them, and that the owner's own requests still work.

var tokenMeta = regexp.MustCompile(`<meta name="peerscope-token" content="([^"]*)">`)

// pageToken reads the token the node puts into a page it serves on this
// machine, as the page's scripts do ("" when the page has none).
func pageToken(t *testing.T, url string) string {
	t.Helper()
	m := tokenMeta.FindSubmatch(get(t, url))
	if m == nil {
		return ""
	}
	return string(m[1])
}

// nodeToken returns the page token of the node serving url, as its
// directory page carries it (what a program on this machine may send).
func nodeToken(t *testing.T, url string) string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	tok := pageToken(t, u.Scheme+"://"+u.Host+"/directory/")
	if tok == "" {
		t.Fatalf("no page token at %s", u.Host)
	}
	return tok
}

// request is one HTTP request to a node, as a browser or a program would
// send it.
type request struct {
	method, url string
	host        string // the Host header, if not the URL's
	origin      string
	contentType string
	token       string // sent as Peerscope-Token
	body        string
}

func (q request) do(t *testing.T) (int, string) {
	t.Helper()
	req, err := http.NewRequest(q.method, q.url, strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	if q.host != "" {
		req.Host = q.host
	}
	if q.origin != "" {
		req.Header.Set("Origin", q.origin)
	}
	if q.contentType != "" {
		req.Header.Set("Content-Type", q.contentType)
	}
	if q.token != "" {
		req.Header.Set("Peerscope-Token", q.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// chatLog returns the texts of a broadcast's comments at a node.
func chatLog(t *testing.T, b *node.Broadcast) []string {
	t.Helper()
	var log []struct{ Text string }
	if err := json.Unmarshal(get(t, b.URLs().Player+"chat/log"), &log); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range log {
		out = append(out, c.Text)
	}
	return out
}

// heartsAfter waits on a chat stream for the heart total to reach at least
// want and returns it.
func heartsAfter(t *testing.T, stream <-chan sseEvent, want uint64) uint64 {
	t.Helper()
	var v struct{ Hearts uint64 }
	waitEvent(t, stream, 20*time.Second, "the heart total", func(e sseEvent) bool {
		return e.Name == "viewers" && json.Unmarshal([]byte(e.Data), &v) == nil && v.Hearts >= want
	})
	return v.Hearts
}

// liveWithChat starts a broadcast (no media: chat needs none) whose node
// takes comments at once (the broadcaster's room knows its state).
func liveWithChat(t *testing.T, n *node.Node, title string) *node.Broadcast {
	t.Helper()
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: title, Source: gated{make(chan struct{}), sampleSource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the chat room", func() bool {
		resp, err := http.Get(b.URLs().Player + "chat/log")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return b
}

// TestForeignHostRefused is DNS rebinding: a page of evil.example whose name
// now resolves to 127.0.0.1 is same-origin with the node, so it can read the
// player page and its token and send JSON. The node answers only the Host
// names that are its own.
func TestForeignHostRefused(t *testing.T) {
	n := newNode(t, node.Config{})
	b := liveWithChat(t, n, "rebinding")
	token := pageToken(t, b.URLs().Player)
	_, port, _ := net.SplitHostPort(n.HTTPAddr().String())
	evil := "evil.example:" + port

	for _, q := range []request{
		{method: "GET", url: b.URLs().Player, host: evil},
		{method: "GET", url: n.HTTPURL() + "/api/broadcasts", host: evil},
		{method: "POST", url: b.URLs().Player + "chat/comment", host: evil, origin: "http://" + evil,
			contentType: "application/json", token: token, body: `{"text":"rebound"}`},
		{method: "POST", url: n.HTTPURL() + "/directory/api/node/watch", host: evil, origin: "http://" + evil,
			contentType: "application/json", token: token, body: `{"link":"` + b.Link().String() + `"}`},
		// WHIP takes any name (its key is its credential), but only WHIP.
		{method: "POST", url: n.HTTPURL() + "/broadcast/whip/%2e%2e/%2e%2e" + b.URLs().Path + "chat/comment", host: evil,
			origin: "http://" + evil, contentType: "application/json", token: token, body: `{"text":"rebound"}`},
	} {
		if code, body := q.do(t); code != http.StatusForbidden {
			t.Errorf("%s %s with Host %s: %d %q, want 403", q.method, q.url, q.host, code, body)
		}
	}
	// The node's own names pass: localhost and its address.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "LOCALHOST:" + port} {
		if code, body := (request{method: "GET", url: b.URLs().Player, host: host}).do(t); code != http.StatusOK {
			t.Errorf("GET the player page with Host %s: %d %q", host, code, body)
		}
	}
	if log := chatLog(t, b); len(log) != 0 {
		t.Fatalf("comments posted through a foreign Host: %q", log)
	}
	// A name the node is told it has (Config.HostNames) passes too.
	named := newNode(t, node.Config{HostNames: []string{"my-node.example"}})
	_, port, _ = net.SplitHostPort(named.HTTPAddr().String())
	if code, body := (request{method: "GET", url: named.HTTPURL() + "/", host: "my-node.example:" + port}).do(t); code != http.StatusOK {
		t.Errorf("GET with a configured Host name: %d %q", code, body)
	}
}

// TestSimpleRequestsRefused: what any web page can send to the node without
// a CORS preflight — text/plain, a form — and what a foreign origin or a
// caller without the page's token sends, is refused before any work; the
// owner's page (JSON, its token, its own origin) still posts.
func TestSimpleRequestsRefused(t *testing.T) {
	n := newNode(t, node.Config{})
	b := liveWithChat(t, n, "csrf")
	token := pageToken(t, b.URLs().Player)
	stream := openChat(t, b, "")
	self := n.HTTPURL()
	chat := b.URLs().Player + "chat/"
	comment := `{"text":"in your name"}`
	for _, q := range []request{
		{method: "POST", url: chat + "comment", contentType: "text/plain", body: comment},
		{method: "POST", url: chat + "comment", contentType: "text/plain;charset=UTF-8", token: token, body: comment},
		{method: "POST", url: chat + "comment", contentType: "application/x-www-form-urlencoded", body: `{"text":"in your name","x":"="}`},
		{method: "POST", url: chat + "comment", contentType: "multipart/form-data; boundary=x", body: comment},
		{method: "POST", url: chat + "comment", body: comment},
		{method: "POST", url: chat + "heart", contentType: "text/plain", body: `{"n":50}`},
		{method: "POST", url: chat + "report", contentType: "text/plain", body: `{"id":"x"}`},
		{method: "POST", url: chat + "vote", contentType: "text/plain", body: `{"call":"1","guilty":true}`},
		{method: "POST", url: self + "/directory/api/node/watch", contentType: "text/plain", body: `{"link":"` + b.Link().String() + `"}`},
		// JSON without the page's token: a program, or a preflighted
		// request from a page that has no token.
		{method: "POST", url: chat + "comment", contentType: "application/json", body: comment},
		{method: "POST", url: chat + "heart", contentType: "application/json", body: `{"n":50}`},
		{method: "POST", url: chat + "comment", contentType: "application/json", token: "not-the-token", body: comment},
		// The right token from a foreign origin.
		{method: "POST", url: chat + "comment", origin: "http://127.0.0.1:1", contentType: "application/json", token: token, body: comment},
		{method: "POST", url: chat + "comment", origin: "null", contentType: "application/json", token: token, body: comment},
	} {
		code, body := q.do(t)
		if code != http.StatusUnsupportedMediaType && code != http.StatusForbidden {
			t.Errorf("POST %s (%s, token %v, origin %q): %d %q, want 415 or 403", q.url, q.contentType, q.token != "", q.origin, code, body)
		}
	}
	// A CORS preflight from another origin gets no permission.
	req, _ := http.NewRequest(http.MethodOptions, chat+"comment", nil)
	req.Header.Set("Origin", "http://127.0.0.1:1")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type, peerscope-token")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode < 400 {
		t.Errorf("preflight from another origin: %s, Allow-Origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if log := chatLog(t, b); len(log) != 0 {
		t.Fatalf("comments posted by simple requests: %q", log)
	}

	// The owner's page: JSON, the token, its own origin (or none).
	for _, origin := range []string{"", self} {
		q := request{method: "POST", url: chat + "comment", origin: origin, contentType: "application/json", token: token, body: `{"text":"from my page"}`}
		if code, body := q.do(t); code != http.StatusOK {
			t.Fatalf("the owner's comment (origin %q): %d %q", origin, code, body)
		}
	}
	// A comment reaches the log once pubsub has delivered it, a moment
	// after the POST is answered.
	var log []string
	waitFor(t, 10*time.Second, "the owner's two comments in the log", func() bool {
		log = chatLog(t, b)
		return len(log) >= 2
	})
	if len(log) != 2 || log[0] != "from my page" {
		t.Fatalf("log %q, want the owner's two comments", log)
	}
	// The owner's heart is the only one counted.
	if code, body := (request{method: "POST", url: chat + "heart", contentType: "application/json", token: token, body: `{"n":1}`}).do(t); code != http.StatusNoContent {
		t.Fatalf("the owner's heart: %d %q", code, body)
	}
	if h := heartsAfter(t, stream, 1); h != 1 {
		t.Fatalf("%d hearts counted, want the owner's 1", h)
	}
}

// TestHTTPSServesOnlyTheBroadcasterPage: the HTTPS listener (the one a
// phone on the LAN reaches) serves the go-live page and WHIP, nothing of
// the node's web UI or API.
func TestHTTPSServesOnlyTheBroadcasterPage(t *testing.T) {
	n, err := node.New(t.Context(), node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	b, err := n.GoLive(t.Context(), node.LiveConfig{WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := net.SplitHostPort(strings.TrimPrefix(n.HTTPSURL(), "https://")); h != "127.0.0.1" {
		t.Errorf("HTTPS at %s: want loopback by default", n.HTTPSURL())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	status := func(method, path, contentType, body string) int {
		req, _ := http.NewRequest(method, n.HTTPSURL()+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/", b.URLs().Path, b.URLs().Path + "api/status", b.URLs().Path + "chat/log",
		"/api/broadcasts", "/metrics", "/directory/", "/directory/api/node/identity"} {
		if code := status("GET", p, "", ""); code != http.StatusNotFound {
			t.Errorf("GET https %s: %d, want 404", p, code)
		}
	}
	for _, p := range []string{b.URLs().Path + "chat/comment", "/directory/api/node/watch"} {
		if code := status("POST", p, "application/json", `{"text":"x","link":"x"}`); code != http.StatusNotFound {
			t.Errorf("POST https %s: %d, want 404", p, code)
		}
	}
	if code := status("GET", "/broadcast/", "", ""); code != http.StatusOK {
		t.Errorf("the broadcaster page over HTTPS: %d", code)
	}
	if code := status("POST", "/broadcast/whip", "application/sdp", "v=0\r\n"); code != http.StatusUnauthorized {
		t.Errorf("WHIP without a key over HTTPS: %d, want 401", code)
	}
}

// TestSecurityHeaders: every page says how it may be framed, sniffed,
// referred and what it may load.
func TestSecurityHeaders(t *testing.T) {
	n := newNode(t, node.Config{})
	b := liveWithChat(t, n, "headers")
	for _, u := range []string{n.HTTPURL() + "/", b.URLs().Player, b.URLs().Player + "player.js", b.URLs().Player + "chat/chat.js",
		n.HTTPURL() + "/broadcast/", n.HTTPURL() + "/directory/", n.HTTPURL() + "/api/broadcasts", b.URLs().Player + "api/status"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: %s, CSP %q, X-Frame-Options %q, X-Content-Type-Options %q, Referrer-Policy %q", u, resp.Status, csp,
				h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
	}
}

// getAsOwner GETs a path of the node's API with its page token.
func getAsOwner(t *testing.T, n *node.Node, path string) []byte {
	t.Helper()
	code, body := (request{method: "GET", url: n.HTTPURL() + path, token: n.APIToken()}).do(t)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return []byte(body)
}
