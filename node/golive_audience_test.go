package node_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/node"
)

// audienceAnswer is what /broadcast/audience answers.
type audienceAnswer struct {
	Private    bool `json:"private"`
	Changeable bool `json:"changeable"`
	Listed     bool `json:"listed"`
	Audience   struct {
		Accounts []string `json:"accounts"`
		Mutuals  bool     `json:"mutuals"`
		Group    string   `json:"group"`
	} `json:"audience"`
	Members []struct {
		Account string `json:"account"`
		Handle  string `json:"handle"`
		Devices int    `json:"devices"`
		Named   string `json:"named"`
	} `json:"members"`
}

// handles lists an answer's members as "@handle/devices/named", sorted.
func (a audienceAnswer) handles() []string {
	var out []string
	for _, m := range a.Members {
		s := m.Handle + "/" + string(rune('0'+m.Devices))
		if m.Named != "" {
			s += "/named"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// goLiveCall is one request to a go-live page's endpoint.
type goLiveCall struct {
	method, url, key, contentType, body, origin, host string
}

func (q goLiveCall) do(t *testing.T, c *http.Client) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(q.method, q.url, strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	if q.key != "" {
		req.Header.Set("Authorization", "Bearer "+q.key)
	}
	if q.contentType != "" {
		req.Header.Set("Content-Type", q.contentType)
	}
	if q.origin != "" {
		req.Header.Set("Origin", q.origin)
	}
	if q.host != "" {
		req.Host = q.host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// privateWHIP has bob's node (HTTP and HTTPS, signed in at svc) go live
// privately for @alice (signed in too, with a device), taking WHIP, its
// audience kept as the CLI keeps it; and publicly, taking WHIP too.
func privateWHIP(t *testing.T, svc *bootstrap.Service, rekey time.Duration) (bob *node.Node, private, public *node.Broadcast) {
	t.Helper()
	bob, err := node.New(t.Context(), node.Config{Bootstrap: []string{svc.URL()}, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bob.Close() })
	signIn(t, bob, "200")
	spec := community.Audience{Accounts: []string{"@alice"}}
	members, err := bob.ResolveAudience(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	private, err = bob.GoLive(t.Context(), node.LiveConfig{Title: "for alice", WHIP: true,
		Private: &node.Audience{Members: members, RekeyEvery: rekey, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := private.KeepAudience(spec, 30*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	public, err = bob.GoLive(t.Context(), node.LiveConfig{Title: "for anyone", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	return bob, private, public
}

// TestGoLiveAudience: the go-live page's audience endpoint, opened by the
// stream key as WHIP is, over the HTTP and the HTTPS server the page is
// served from: it says who may watch a private broadcast (@alice, her one
// device) and that a public one is public and listed; it changes the
// private one's audience through ChangeAudience (carol in by handle, then
// out); a wrong or missing key gets WHIP's very answer; another site's
// page, a foreign Host and bad input are refused with a clear 4xx.
func TestGoLiveAudience(t *testing.T) {
	// Each change is a few signed requests of bob's at the bootstrap, and
	// this test makes twenty in a second: more than a peer's default burst.
	svc := startBootstrapWith(t, bootstrap.ServerConfig{RatePeer: bootstrap.Rate{PerSecond: 100, Burst: 200}})
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 2}
	alice, carol := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, carol, "300")
	bob, private, public := privateWHIP(t, svc, time.Hour)
	// Carol and bob follow each other; bob's saved group "friends" is alice.
	follow(t, svc, bob, "twitter:300")
	follow(t, svc, carol, "twitter:200")
	bobs := &api.Client{Base: svc.URL(), Key: bob.Host().Peerstore().PrivKey(bob.ID())}
	if _, err := bobs.PutGroup(t.Context(), api.Group{Name: "friends", Members: []string{"twitter:100"}}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	httpURL, httpsURL := bob.HTTPURL()+"/broadcast/audience", bob.HTTPSURL()+"/broadcast/audience"
	key := private.StreamKey()

	read := func(body string) audienceAnswer {
		t.Helper()
		var a audienceAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("the answer %q: %v", body, err)
		}
		return a
	}
	for _, u := range []string{httpURL, httpsURL} {
		code, hdr, body := goLiveCall{method: "GET", url: u, key: key}.do(t, c)
		a := read(body)
		if code != http.StatusOK || !a.Private || !a.Changeable || strings.Join(a.handles(), ",") != "@alice/1/named" ||
			strings.Join(a.Audience.Accounts, ",") != "@alice" || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s: %d %s", u, code, body)
		}
	}
	code, _, body := goLiveCall{method: "GET", url: httpsURL, key: public.StreamKey()}.do(t, c)
	if a := read(body); code != http.StatusOK || a.Private || a.Changeable || !a.Listed || len(a.Members) != 0 {
		t.Fatalf("GET of the public broadcast: %d %s", code, body)
	}

	// A wrong key gets what WHIP answers it, byte for byte; so does none.
	for _, k := range []string{"nope", ""} {
		wc, wh, wb := goLiveCall{method: "POST", url: bob.HTTPURL() + "/broadcast/whip", key: k, contentType: "application/sdp", body: "v=0\r\n"}.do(t, c)
		for _, q := range []goLiveCall{
			{method: "GET", url: httpURL, key: k},
			{method: "GET", url: httpsURL, key: k},
			{method: "PUT", url: httpURL, key: k, contentType: "application/json", body: `{"accounts":["@carol"]}`},
		} {
			code, hdr, body := q.do(t, c)
			if code != http.StatusUnauthorized || code != wc || body != wb || hdr.Get("WWW-Authenticate") != wh.Get("WWW-Authenticate") {
				t.Errorf("%s %s with key %q: %d %q %q; WHIP answers %d %q %q", q.method, q.url, k, code, body,
					hdr.Get("WWW-Authenticate"), wc, wb, wh.Get("WWW-Authenticate"))
			}
		}
	}

	// Refusals, each with a clear word.
	_, port, _ := net.SplitHostPort(bob.HTTPAddr().String())
	evil := "evil.example:" + port
	carolsTwoSteps := `{"accounts":["@alice","@carol"]}`
	for _, tc := range []struct {
		name string
		q    goLiveCall
		want int
		says string
	}{
		{"another site's page", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: carolsTwoSteps,
			origin: "http://evil.example"}, http.StatusForbidden, "other sites"},
		{"a foreign Host", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: carolsTwoSteps,
			host: evil, origin: "http://" + evil}, http.StatusForbidden, "own names"},
		{"a form", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/x-www-form-urlencoded", body: "accounts=@carol"},
			http.StatusUnsupportedMediaType, "JSON"},
		{"bad JSON", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"accounts":"@carol"}`},
			http.StatusBadRequest, "JSON"},
		{"two objects", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{} {}`},
			http.StatusBadRequest, "one object"},
		{"an unknown field", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"who":["@carol"]}`},
			http.StatusBadRequest, "unknown field"},
		{"two in one", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"accounts":["@carol,@dave"]}`},
			http.StatusBadRequest, "one account each"},
		{"an empty name", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"accounts":["@alice","  "]}`},
			http.StatusBadRequest, "empty account"},
		{"not a key", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"accounts":["nowhere:"]}`},
			http.StatusBadRequest, "not an account key"},
		{"an unknown account", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"accounts":["@nobody"]}`},
			http.StatusBadRequest, "@nobody"},
		{"a bad group name", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"group":"my friends!"}`},
			http.StatusBadRequest, "letters, digits"},
		{"no such group", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"group":"strangers"}`},
			http.StatusBadRequest, "no saved group"},
		{"too many", goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json",
			body: `{"accounts":[` + strings.Repeat(`"@a",`, 512) + `"@b"]}`}, http.StatusBadRequest, "at most 512"},
		{"the public broadcast", goLiveCall{method: "PUT", url: httpURL, key: public.StreamKey(), contentType: "application/json", body: carolsTwoSteps},
			http.StatusConflict, "cannot become private"},
		{"DELETE", goLiveCall{method: "DELETE", url: httpURL, key: key}, http.StatusMethodNotAllowed, "PUT"},
	} {
		code, _, body := tc.q.do(t, c)
		if code != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, code, body, tc.want, tc.says)
		}
	}
	if _, _, body := (goLiveCall{method: "GET", url: httpURL, key: key}).do(t, c); strings.Join(read(body).handles(), ",") != "@alice/1/named" {
		t.Fatalf("after the refusals: %s", body)
	}

	// Carol in by handle (over HTTPS, as from a phone), then out.
	code, _, body = goLiveCall{method: "PUT", url: httpsURL, key: key, contentType: "application/json", body: `{"accounts":["@alice","carol"]}`,
		origin: bob.HTTPSURL()}.do(t, c)
	if a := read(body); code != http.StatusOK || strings.Join(a.handles(), ",") != "@alice/1/named,@carol/1/named" {
		t.Fatalf("carol added: %d %s", code, body)
	}
	if w, err := carol.Watch(t.Context(), private.Link()); err != nil {
		t.Fatalf("carol, added, watches: %v", err)
	} else {
		_ = w.Close()
	}
	code, _, body = goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: `{"accounts":["@alice"]}`,
		origin: bob.HTTPURL()}.do(t, c)
	if a := read(body); code != http.StatusOK || strings.Join(a.handles(), ",") != "@alice/1/named" {
		t.Fatalf("carol removed: %d %s", code, body)
	}
	if _, err := carol.Watch(t.Context(), private.Link()); err == nil {
		t.Fatal("carol, removed, still watches")
	}

	// Those who follow each other with bob (carol), then his saved group
	// (alice): in without being named, so with nothing to remove by name.
	for _, tc := range []struct{ body, want string }{
		{`{"mutuals":true}`, "@carol/1"},
		{`{"group":"friends"}`, "@alice/1"},
		{`{"accounts":["@carol"],"group":"friends"}`, "@alice/1,@carol/1/named"},
	} {
		code, _, body := goLiveCall{method: "PUT", url: httpURL, key: key, contentType: "application/json", body: tc.body}.do(t, c)
		if a := read(body); code != http.StatusOK || strings.Join(a.handles(), ",") != tc.want {
			t.Errorf("PUT %s: %d %s, want %s", tc.body, code, body, tc.want)
		}
	}
	_ = alice
}

// follow has n's account follow the account key at svc.
func follow(t *testing.T, svc *bootstrap.Service, n *node.Node, key string) {
	t.Helper()
	c := &api.Client{Base: svc.URL(), Key: n.Host().Peerstore().PrivKey(n.ID())}
	if err := c.Follow(t.Context(), key); err != nil {
		t.Fatal(err)
	}
}

// TestGoLiveAudienceOwnMailbox: a private broadcast whose keys go through
// a mailbox of the program running the node, not a bootstrap, has no
// audience named by handles: its go-live page is told it is private, with
// its members, and that it cannot change them (409 to a PUT) — not that
// it is public.
func TestGoLiveAudienceOwnMailbox(t *testing.T) {
	mb := &mailbox.Memory{}
	alice := privateNode(t, mb, node.NoRelay)
	root := privateNode(t, mb, 2)
	b, err := root.GoLive(t.Context(), node.LiveConfig{WHIP: true, Private: &node.Audience{Members: []node.Member{memberOf("twitter:1", alice)}}})
	if err != nil {
		t.Fatal(err)
	}
	u := root.HTTPURL() + "/broadcast/audience"
	code, _, body := goLiveCall{method: "GET", url: u, key: b.StreamKey()}.do(t, http.DefaultClient)
	var a audienceAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || code != http.StatusOK || !a.Private || a.Changeable ||
		len(a.Members) != 1 || a.Members[0].Account != "twitter:1" || a.Members[0].Devices != 1 || a.Members[0].Named != "" {
		t.Fatalf("GET: %d %s (%v)", code, body, err)
	}
	code, _, body = goLiveCall{method: "PUT", url: u, key: b.StreamKey(), contentType: "application/json", body: `{"accounts":["@carol"]}`}.do(t, http.DefaultClient)
	if code != http.StatusConflict || !strings.Contains(body, "through the bootstrap") {
		t.Fatalf("PUT: %d %s", code, body)
	}
}
