package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/bootstrap/xstandin"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// startBootstrap runs a bootstrap's HTTP service with a stand-in X on the
// same server, users alice (100) and bob (200).
func startBootstrap(t *testing.T, phone ...bootstrap.CodeSender) *bootstrap.Service {
	t.Helper()
	var sc bootstrap.ServerConfig
	if len(phone) > 0 {
		sc.Phone = phone[0]
	}
	return startBootstrapWith(t, sc)
}

// startBootstrapWith is startBootstrap with sc's settings.
func startBootstrapWith(t *testing.T, sc bootstrap.ServerConfig) *bootstrap.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var x *xstandin.Provider
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Server: sc,
		Configure: func(u string, c *bootstrap.ServerConfig) {
			c.Twitter = bootstrap.TwitterConfig{ClientID: "test", AuthorizeURL: u + "/x/i/oauth2/authorize",
				TokenURL: u + "/x/2/oauth2/token", APIURL: u + "/x/2"}
			x = xstandin.New(xstandin.Config{ClientID: "test", RedirectURIs: []string{u + "/api/v1/auth/twitter/callback"}})
			x.AddUser(xstandin.User{ID: "100", Username: "alice", Name: "Alice"})
			x.AddUser(xstandin.User{ID: "200", Username: "bob", Name: "Bob"})
			x.AddUser(xstandin.User{ID: "300", Username: "carol", Name: "Carol"})
		}})
	if err != nil {
		t.Fatal(err)
	}
	svc.Server.Mount("/x/", x)
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return svc
}

// signIn signs a node in through its own page's endpoints, as user, as a
// browser on the node's machine does: the node starts (its page is on
// loopback, so the bootstrap sends the browser back there), the browser
// signs in at X and comes back to the page with the one-time code in the
// fragment, and the page has the node redeem it.
func signIn(t *testing.T, n *node.Node, user string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.HTTPURL()+"/directory/api/node/signin", strings.NewReader(`{"scopes":["follows"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Peerscope-Token", n.APIToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var start struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&start)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in start: %d %v", resp.StatusCode, err)
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), n.HTTPURL()) {
			return http.ErrUseLastResponse // back at the node's page: the code is in the fragment
		}
		return nil
	}}
	resp, err = b.Get(start.AuthorizeURL + "&login=" + user)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || back.Path != "/directory/" || !strings.HasPrefix(back.Fragment, "signin=") {
		t.Fatalf("sign-in callback: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st, out := postJSON(t, n.HTTPURL()+"/directory/api/node/signin/finish", `{"code":"`+strings.TrimPrefix(back.Fragment, "signin=")+`"}`); st != http.StatusOK {
		t.Fatalf("sign-in finish: %d %v", st, out)
	}
	var id struct {
		Identity *struct{ Handle string }
	}
	_ = json.Unmarshal(getAsOwner(t, n, "/directory/api/node/identity"), &id)
	if id.Identity == nil {
		t.Fatalf("node %s not signed in after the callback", n.ID())
	}
}

// TestDirectoryThroughNodes: a broadcaster signed in at a bootstrap goes
// live and is listed with its handle; a viewer's node, signed in as
// someone who follows it, shows the directory page in headless Chromium
// with the go-live note, searches it, and Watch plays it on that node. The
// viewer node believes the broadcaster's attestation with the keys it read
// from the bootstrap, and the end drops the broadcast from the live list.
func TestDirectoryThroughNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 2, DirectoryInterval: time.Second}
	alice, bob := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	bobClient := &api.Client{Base: svc.URL(), Key: bob.Host().Peerstore().PrivKey(bob.ID())}
	if err := bobClient.Follow(t.Context(), "twitter:100"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Trust().VerifyBytes(alice.Attestation(), alice.ID(), time.Now()); err != nil {
		t.Fatalf("bob's node does not believe alice's attestation: %v", err)
	}

	const title = "Harbour sunset live"
	ready := make(chan struct{}, 1)
	readySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ready <- struct{}{}:
		default:
		}
	}))
	defer readySrv.Close()
	var b *node.Broadcast
	started := make(chan error, 1)
	go func() {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			started <- nil
			return
		}
		var err error
		b, err = alice.GoLive(context.Background(), node.LiveConfig{Title: title, Source: sampleSource(t)})
		started <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "directory.mjs", "--url", bob.HTTPURL()+"/directory/", "--ready", readySrv.URL,
		"--title", title, "--handle", "@alice")
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if b != nil {
		defer b.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error, Who, Note, Item, Player string
		EmptyOnMiss, FoundBySearch     bool
		Errors                         []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("page: %+v", r)
	switch {
	case r.Error != "":
		t.Fatalf("page: %s", r.Error)
	case len(r.Errors) > 0:
		t.Fatalf("page errors: %v", r.Errors)
	case !strings.Contains(r.Who, "@bob"):
		t.Fatalf("signed in as %q", r.Who)
	case !strings.Contains(r.Note, "@alice is live"):
		t.Fatalf("go-live note %q", r.Note)
	case !strings.Contains(r.Item, "@alice") || !strings.Contains(r.Item, "LIVE"):
		t.Fatalf("list item %q", r.Item)
	case !r.EmptyOnMiss || !r.FoundBySearch:
		t.Fatal("search")
	case r.Player != b.URLs().Path:
		t.Fatalf("Watch led to %q, want %q", r.Player, b.URLs().Path)
	}
	if bob.Lookup(b.ID()) == nil {
		t.Fatal("bob's node does not watch the broadcast it opened")
	}
	// The end leaves the live list.
	_ = b.Close()
	waitFor(t, 30*time.Second, "the ended broadcast to leave the live list", func() bool {
		list, err := bobClient.List(t.Context(), api.Query{})
		return err == nil && len(list) == 0
	})
	// The replay side lists it as replayable.
	if err := bob.ListReplay(t.Context(), b.ID(), "bafy-test"); err == nil {
		t.Fatal("a viewer listed the broadcaster's replay")
	}
	if err := alice.ListReplay(t.Context(), b.ID(), "bafy-test"); err != nil {
		t.Fatal(err)
	}
	// (The broadcaster's node also lists it by itself, with its manifest's
	// CID, once the manifest is signed: either reference may be the last.)
	replays, err := bobClient.List(t.Context(), api.Query{Replays: true})
	if err != nil || len(replays) != 1 || replays[0].ID != b.ID() || replays[0].Replay == "" {
		t.Fatalf("replays %v %v", replays, err)
	}
}

// texts keeps the codes the bootstrap "sends".
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

// postJSON posts to the node's API as its page does (JSON, the page token).
func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Peerscope-Token", nodeToken(t, url))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestPhoneSignInThroughNode: the directory page's phone form, as HTTP: a
// wrong code is passed on as the bootstrap's 400, the right one gives the
// node its attestation, which chat then uses.
func TestPhoneSignInThroughNode(t *testing.T) {
	sms := &texts{}
	svc := startBootstrap(t, sms)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	base := n.HTTPURL() + "/directory/api/node/phone/"
	if st, _ := postJSON(t, base+"start", `{"phone":"12"}`); st != http.StatusBadRequest {
		t.Fatalf("bad number: %d", st)
	}
	if st, out := postJSON(t, base+"start", `{"phone":"+15550199"}`); st != http.StatusOK {
		t.Fatalf("start: %d %v", st, out)
	}
	sms.mu.Lock()
	code := sms.codes["+15550199"]
	sms.mu.Unlock()
	wrong := "111111"
	if code == wrong {
		wrong = "222222"
	}
	if st, _ := postJSON(t, base+"verify", `{"phone":"+15550199","code":"`+wrong+`"}`); st != http.StatusBadRequest {
		t.Fatalf("wrong code: %d", st)
	}
	if n.Attestation() != nil {
		t.Fatal("an attestation after a wrong code")
	}
	st, out := postJSON(t, base+"verify", `{"phone":"+15550199","code":"`+code+`"}`)
	if st != http.StatusOK {
		t.Fatalf("verify: %d %v", st, out)
	}
	if _, err := n.Trust().VerifyBytes(n.Attestation(), n.ID(), time.Now()); err != nil {
		t.Fatalf("the node's own attestation: %v", err)
	}
	if resp, err := http.Post(base+"start", "text/plain", strings.NewReader(`{"phone":"+15550199"}`)); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("a form post (cross-site) was taken: %v %v", resp, err)
	}
}

// TestPhonePage signs a node in with a phone number from its directory
// page in headless Chromium.
func TestPhonePage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	sms := &texts{}
	svc := startBootstrap(t, sms)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	codes := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sms.mu.Lock()
		defer sms.mu.Unlock()
		_, _ = w.Write([]byte(sms.codes[r.URL.Query().Get("phone")]))
	}))
	defer codes.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "phone.mjs", "--url", n.HTTPURL()+"/directory/", "--codes", codes.URL, "--phone", "+15550142")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error, Who      string
		PhoneFormHidden bool
		Errors          []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Error != "" || len(r.Errors) > 0 || !strings.Contains(r.Who, "+1•••0142") || !r.PhoneFormHidden {
		t.Fatalf("page: %+v", r)
	}
	if n.Attestation() == nil {
		t.Fatal("the node holds no attestation")
	}
}

// codeOnPage reads the one-time code the bootstrap's page shows.
func codeOnPage(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`id="code">([^<]+)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in code on the page: %s", page)
	}
	return m[1]
}

// TestSignInPage signs a node in from its directory page in headless
// Chromium, with the code typed in and with the code sent back by the
// bootstrap to the page, and signs it out in between. First the
// bootstrap's own page, which can sign no node in, must say where to.
func TestSignInPage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	// A code as the bootstrap's page would show it: a sign-in the node
	// started (as bob), taken through X by a browser that stops when sent
	// back to the node's page.
	req, _ := http.NewRequest(http.MethodPost, n.HTTPURL()+"/directory/api/node/signin", strings.NewReader(`{"scopes":[]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Peerscope-Token", n.APIToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var start struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&start)
	resp.Body.Close()
	b := &http.Client{CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), n.HTTPURL()) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err = b.Get(start.AuthorizeURL + "&login=200")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	code := strings.TrimPrefix(back.Fragment, "signin=")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	args := []string{"--url", n.HTTPURL() + "/directory/", "--code", code, "--bootstrap", svc.URL() + "/"}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	out, err := browsertest.Run(ctx, t, "signin.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error, Typed, SentBack, HashLeft, BootstrapSays  string
		FinishHiddenWhenIn, SignedOut, BootstrapSideways bool
		Errors                                           []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("page: %+v", r)
	switch {
	case r.Error != "" || len(r.Errors) > 0:
		t.Fatalf("page: %s %v", r.Error, r.Errors)
	case !strings.Contains(r.Typed, "@bob") || !r.FinishHiddenWhenIn:
		t.Fatalf("with the code typed in: %q", r.Typed)
	case !strings.Contains(r.BootstrapSays, "peerscope signin --bootstrap '"+svc.URL()+"'") || !strings.Contains(r.BootstrapSays, "Sign out"):
		t.Fatalf("the bootstrap's page on signing in: %q", r.BootstrapSays)
	case r.BootstrapSideways:
		t.Fatal("the bootstrap's page scrolls sideways with its sign-in box open")
	case !r.SignedOut:
		t.Fatal("still signed in after Sign out")
	case !strings.Contains(r.SentBack, "@alice") || r.HashLeft != "":
		t.Fatalf("with the code sent back: %q, fragment left %q", r.SentBack, r.HashLeft)
	}
	if n.Attestation() == nil {
		t.Fatal("the node holds no attestation")
	}
}

// TestListingNamesTheBroadcasterAtOnce: a broadcaster that signs in while
// live is named in the directory within seconds, and is anonymous again
// as soon as it signs out — not at the next renewal of its listing, an
// hour away here.
func TestListingNamesTheBroadcasterAtOnce(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Hour})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "who is this", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	who := func() (listed bool, handle string) {
		bs, err := (&api.Client{Base: svc.URL()}).List(t.Context(), api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bs {
			if l.ID == b.ID() {
				if l.Who != nil {
					return true, l.Who.Handle
				}
				return true, ""
			}
		}
		return false, ""
	}
	waitFor(t, 30*time.Second, "the broadcast listed", func() bool { listed, _ := who(); return listed })
	signIn(t, n, "100")
	waitFor(t, 20*time.Second, "the broadcaster named", func() bool { _, h := who(); return h != "" })
	if st, out := postJSON(t, n.HTTPURL()+"/directory/api/node/signout", `{}`); st != http.StatusOK {
		t.Fatalf("sign-out: %d %v", st, out)
	}
	waitFor(t, 20*time.Second, "the broadcaster anonymous again", func() bool { _, h := who(); return h == "" })
}

// TestSignInCallbackPagesFit: the pages a browser lands on back from X —
// the one-time code to type in (a sign-in that names no page to return
// to), and a failed sign-in, which leads back to the directory — at a
// phone's and two tablets' sizes in Chromium (tests/browser/pages.mjs):
// no error bar the failure's own status, nothing refused by their policy,
// no sideways scrolling.
func TestSignInCallbackPagesFit(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	c := &api.Client{Base: svc.URL(), Key: n.Host().Peerstore().PrivKey(n.ID())}
	for _, size := range []string{"phone", "tablet", "portrait"} {
		// A callback works once: a new sign-in for each size.
		start, err := c.TwitterStart(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), svc.URL()) {
				return http.ErrUseLastResponse // at the callback: the browser opens it
			}
			return nil
		}}
		resp, err := b.Get(start.AuthorizeURL + "&login=300")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		callback := resp.Header.Get("Location")
		if !strings.HasPrefix(callback, svc.URL()) {
			t.Fatalf("X sent the browser to %q", callback)
		}
		pages := lookAt(t, 2*time.Minute, 2, "--wait", "300", "--sizes", size, "--allow", "status of 400",
			"--page", "code="+callback, "--page", "failed="+svc.URL()+"/api/v1/auth/twitter/callback?state=nope&code=x")
		for _, p := range pages {
			want := map[string]string{"code": "type this code there", "failed": "Back to the directory"}[p.Name]
			if !strings.Contains(p.All, want) {
				t.Errorf("%s at %s says no %q:\n%s", p.Name, p.Size, want, p.All)
			}
		}
	}
}
