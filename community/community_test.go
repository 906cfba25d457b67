package community_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/internal/testutil"
)

// texts keeps the codes the bootstrap "sends" (the SMS network is outside
// what is tested).
type texts struct {
	mu    sync.Mutex
	codes map[string]string
}

func (x *texts) SendCode(_ context.Context, phone, code string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.codes == nil {
		x.codes = map[string]string{}
	}
	x.codes[phone] = code
	return nil
}

func (x *texts) code(phone string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.codes[phone]
}

// startBootstrap runs a real bootstrap HTTP service on loopback.
func startBootstrap(t *testing.T, phone bootstrap.CodeSender) *bootstrap.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	off := bootstrap.Rate{PerSecond: -1}
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{Phone: phone, RateIP: off, RatePeer: off, RateAccount: off, RatePhone: off}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return svc
}

// fakeNode is the node as the community side sees it.
type fakeNode struct {
	views, identified atomic.Int64
}

func (f *fakeNode) Join(_ context.Context, link string) (string, error) {
	if !strings.HasPrefix(link, "peerscope://") {
		return "", community.BadLink(fmt.Errorf("%q is not a peerscope:// link", link))
	}
	return "/b/x/", nil
}

func (f *fakeNode) ReplayViews(string) int { return int(f.views.Load()) }

func (f *fakeNode) ReplayViewsIdentified(string) int { return int(f.identified.Load()) }

func (f *fakeNode) ReplayPage(context.Context, string) string { return "" }

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func newCommunity(t *testing.T, cfg community.Config) *community.Community {
	t.Helper()
	c, err := community.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitFor waits up to 20 s for ok.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, ok)
}

// linkOf is a broadcast's link through its broadcaster, as Link.String
// writes it.
func linkOf(id string, broadcaster peer.ID) string {
	return "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + broadcaster.String()
}

func listed(t *testing.T, c *api.Client, q api.Query, id string) *api.Listing {
	t.Helper()
	list, err := c.List(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// TestListings: a broadcast the node roots is listed with its title and
// viewers, renewed with fresh counts, listed ended when it ends; its replay
// is then listed with the manifest reference, and a new replay view renews
// the replay's count.
func TestListings(t *testing.T) {
	svc := startBootstrap(t, nil)
	key, self := newKey(t)
	nd := &fakeNode{}
	c := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: key, Node: nd, ListingInterval: 50 * time.Millisecond})
	reader := &api.Client{Base: svc.URL()}
	id := self.String() + ".abcd"
	var viewers atomic.Int64
	viewers.Store(3)
	ended := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ListLive(t.Context(), community.Live{ID: id, Ended: ended, Entry: func() api.ListingUpdate {
			return api.ListingUpdate{Title: "Harbour", Link: linkOf(id, self), Started: time.Now().Add(-time.Minute), Viewers: int(viewers.Load())}
		}})
	}()
	waitFor(t, "the live listing", func() bool {
		l := listed(t, reader, api.Query{}, id)
		return l != nil && l.Title == "Harbour" && l.Viewers == 3 && l.Broadcaster == self.String()
	})
	viewers.Store(7)
	waitFor(t, "the renewed count", func() bool {
		l := listed(t, reader, api.Query{}, id)
		return l != nil && l.Viewers == 7
	})
	close(ended)
	<-done
	if l := listed(t, reader, api.Query{}, id); l != nil {
		t.Fatalf("still live after its end: %+v", l)
	}

	c.ListReplay(id, api.ListingUpdate{Title: "Harbour", Link: linkOf(id, self), Started: time.Now().Add(-time.Minute), Ended: time.Now()}, "bafy-manifest")
	waitFor(t, "the replay listing", func() bool {
		l := listed(t, reader, api.Query{Replays: true}, id)
		return l != nil && l.Replay == "bafy-manifest"
	})
	nd.views.Store(2)
	nd.identified.Store(1)
	c.ReplayViewed(id)
	waitFor(t, "the replay's view counts, identified apart", func() bool {
		l := listed(t, reader, api.Query{Replays: true}, id)
		return l != nil && l.ReplayViewers == 2 && l.ReplayViewersIdentified == 1
	})
	if err := c.PublishReplay(t.Context(), self.String()+".other", "x"); err == nil {
		t.Fatal("a replay of a broadcast the directory never heard of was listed")
	}
}

// TestPhoneSignUpThroughHandler: the page's phone form, as HTTP through
// the node's handler: a wrong code is passed on as the bootstrap's 400,
// the right one gives the node its attestation, which the trust set read
// from the bootstrap believes.
func TestPhoneSignUpThroughHandler(t *testing.T) {
	sms := &texts{}
	svc := startBootstrap(t, sms)
	key, self := newKey(t)
	c := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: key, Node: &fakeNode{}})
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	if c.Attestation() != nil {
		t.Fatal("an attestation before signing up")
	}
	const phone = "+15550100"
	if code, body := post(t, srv.URL+"/directory/api/node/phone/start", `{"phone":"`+phone+`"}`); code != http.StatusOK {
		t.Fatalf("phone start: %d %s", code, body)
	}
	wrong := "000000"
	if sms.code(phone) == wrong {
		wrong = "111111"
	}
	if code, body := post(t, srv.URL+"/directory/api/node/phone/verify", `{"phone":"`+phone+`","code":"`+wrong+`"}`); code != http.StatusBadRequest || !strings.Contains(body, "wrong") {
		t.Fatalf("a wrong code: %d %s", code, body)
	}
	code, body := post(t, srv.URL+"/directory/api/node/phone/verify", `{"phone":"`+phone+`","code":"`+sms.code(phone)+`"}`)
	if code != http.StatusOK || !strings.Contains(body, `"Handle":"+1•••0100·`) {
		t.Fatalf("the right code: %d %s", code, body)
	}
	if _, err := c.Trust().VerifyBytes(c.Attestation(), self, time.Now()); err != nil {
		t.Fatalf("the node's attestation is not believed: %v", err)
	}
	var id struct {
		Peer      string
		Bootstrap bool
		Identity  *struct{ Handle string }
	}
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/directory/api/node/identity")), &id); err != nil || !id.Bootstrap ||
		id.Peer != self.String() || id.Identity == nil || !strings.HasPrefix(id.Identity.Handle, "+1•••0100·") {
		t.Fatalf("identity: %+v %v", id, err)
	}
	if info := get(t, srv.URL+"/directory/api/v1/info"); !strings.Contains(info, `"keys"`) {
		t.Fatalf("the proxied info: %s", info)
	}
}

// TestHandlerWithoutBootstrap: a node without a bootstrap still serves the
// page and joins a pasted link; its proxy and sign-in say there is no
// bootstrap; the node's endpoints take JSON only.
func TestHandlerWithoutBootstrap(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	key, _ := newKey(t)
	c, err := community.New(t.Context(), community.Config{Key: key, Node: &fakeNode{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/directory/", "", http.StatusOK, "<!doctype html>"},
		{"GET", "/directory", "", http.StatusOK, "<!doctype html>"}, // redirected
		{"GET", "/directory/api/v1/broadcasts", "", http.StatusNotFound, "no bootstrap"},
		{"GET", "/directory/api/node/identity", "", http.StatusOK, `"bootstrap":false`},
		{"POST", "/directory/api/node/signin", `{"scopes":[]}`, http.StatusNotFound, "no bootstrap"},
		{"POST", "/directory/api/node/watch", `{"link":"http://x"}`, http.StatusBadRequest, "not a peerscope"},
		{"POST", "/directory/api/node/watch", `{"link":"peerscope://x"}`, http.StatusOK, `"player":"/b/x/"`},
		{"POST", "/directory/api/node/watch", `{"link":"peerscope://x","more":1}`, http.StatusBadRequest, "unknown field"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(strings.ToLower(string(b)), strings.ToLower(tc.want)) {
			t.Errorf("%s %s: %d %.120s; want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	resp, err := http.Post(srv.URL+"/directory/api/node/watch", "text/plain", strings.NewReader(`{"link":"peerscope://x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a form post: %d", resp.StatusCode)
	}
	if _, err := c.RefreshIdentity(t.Context()); !errors.Is(err, community.ErrNoBootstrap) {
		t.Errorf("RefreshIdentity: %v", err)
	}
	if c.Trust() != nil || c.HasBootstrap() || c.Attestation() != nil {
		t.Error("trust, a bootstrap or an attestation out of nothing")
	}
	srv.Close()
	c.Close()
	c.Close()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}

// TestNewRefuses: what New cannot run with.
func TestNewRefuses(t *testing.T) {
	key, _ := newKey(t)
	for name, cfg := range map[string]community.Config{
		"no key":     {Node: &fakeNode{}},
		"no node":    {Key: key},
		"bad URL":    {Key: key, Node: &fakeNode{}, Bootstraps: []string{"ftp://boot"}},
		"no host":    {Key: key, Node: &fakeNode{}, Bootstraps: []string{"http://"}},
		"not an URL": {Key: key, Node: &fakeNode{}, Bootstraps: []string{"::"}},
	} {
		if _, err := community.New(t.Context(), cfg); !errors.Is(err, community.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
