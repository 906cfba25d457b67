package node_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// phoneSignIn signs n in with a phone number through its page's endpoints.
func phoneSignIn(t *testing.T, n *node.Node, sms *texts, phone string) {
	t.Helper()
	base := n.HTTPURL() + "/directory/api/node/phone/"
	if st, out := postJSON(t, base+"start", `{"phone":"`+phone+`"}`); st != http.StatusOK {
		t.Fatalf("phone start: %d %v", st, out)
	}
	sms.mu.Lock()
	code := sms.codes[phone]
	sms.mu.Unlock()
	if st, out := postJSON(t, base+"verify", `{"phone":"`+phone+`","code":"`+code+`"}`); st != http.StatusOK {
		t.Fatalf("phone verify: %d %v", st, out)
	}
}

// TestPrivateThroughBootstrap: a private broadcast whose keys go through a
// real bootstrap (HTTP and SQLite in this process): the member's node,
// signed in, published its kept device key there; the broadcaster's,
// signed in, finds it by handle, lists the broadcast as private (out of
// the directory, in the member's invitations) and leaves roster, tokens
// and bundles there; the member takes its token and keys from there and
// plays the sample across rekeys every 3 s with no chunk that fails to
// open; a non-member signed in with a phone is refused at Watch with the
// reason.
func TestPrivateThroughBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	sms := &texts{}
	svc := startBootstrap(t, sms)
	cfg := func(slots int) node.Config {
		return node.Config{DataDir: t.TempDir(), Bootstrap: []string{svc.URL()}, Slots: slots}
	}
	bob, alice, carol := newNode(t, cfg(2)), newNode(t, cfg(node.NoRelay)), newNode(t, cfg(1))
	signIn(t, bob, "200")
	signIn(t, alice, "100")
	phoneSignIn(t, carol, sms, "+15550123")
	ctx := t.Context()

	// Alice's device key, as the bootstrap attests it, is her node's kept one.
	if _, err := bob.ResolveAudience(ctx, community.Audience{Accounts: []string{"@alice", "@nobody"}}); !errors.Is(err, node.ErrUnknownAccount) ||
		!strings.Contains(err.Error(), "@nobody") {
		t.Fatalf("an unknown account: %v, want ErrUnknownAccount naming @nobody", err)
	}
	members, err := bob.ResolveAudience(ctx, community.Audience{Accounts: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Account != "twitter:100" || members[0].Handle != "@alice" || len(members[0].Devices) != 1 ||
		members[0].Devices[0].Fingerprint() != alice.DeviceKey().Fingerprint() {
		t.Fatalf("the audience @alice: %+v", members)
	}

	gate := make(chan struct{})
	b, err := bob.GoLive(ctx, node.LiveConfig{Title: "just alice", Source: gated{gate, sampleSource(t)},
		Private: &node.Audience{Members: members, RekeyEvery: 3 * time.Second, Grace: 1500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	anon := &api.Client{Base: svc.URL()}
	if list, err := anon.List(ctx, api.Query{}); err != nil || len(list) != 0 {
		t.Fatalf("the public directory lists %d broadcasts (%v)", len(list), err)
	}
	aliceClient := &api.Client{Base: svc.URL(), Key: alice.Host().Peerstore().PrivKey(alice.ID())}
	if inv, err := aliceClient.Invitations(ctx); err != nil || len(inv) != 1 || inv[0].Listing.ID != b.ID() ||
		inv[0].Listing.Who == nil || inv[0].Listing.Who.Handle != "@bob" {
		t.Fatalf("alice's invitations: %+v %v", inv, err)
	}

	w, err := alice.Watch(ctx, b.Link())
	if err != nil {
		t.Fatal(err)
	}
	if !w.Private() {
		t.Fatal("the member's broadcast is not private")
	}
	waitFor(t, 30*time.Second, "the member in the tree", func() bool { return depth(t, w) == 1 })
	_, err = carol.Watch(ctx, b.Link())
	if !errors.Is(err, node.ErrNotMember) || !strings.Contains(err.Error(), "presented no") {
		t.Fatalf("the non-member's Watch: %v, want ErrNotMember with the reason", err)
	}
	t.Logf("the non-member is told: %v", err)

	first := b.Epoch()
	close(gate)
	for _, x := range []*node.Broadcast{w, b} {
		select {
		case <-x.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the end never came")
		}
	}
	waitFor(t, 10*time.Second, "every part played", func() bool { return status(t, w).Received >= 45 })
	st := status(t, w)
	if b.Epoch() == first {
		t.Fatalf("no rekey: still epoch %d", first)
	}
	if st.Undecryptable != 0 {
		t.Fatalf("%d chunks did not open at the member", st.Undecryptable)
	}
	if st.Epoch != b.Epoch() {
		t.Fatalf("the member's newest epoch %d, the broadcaster's %d", st.Epoch, b.Epoch())
	}
	// The keys went through the bootstrap.
	for _, table := range []string{"rosters", "tokens", "bundles", "device_keys"} {
		if n, err := svc.Store.Count(ctx, table); err != nil || n == 0 {
			t.Fatalf("the bootstrap holds %d %s (%v)", n, table, err)
		}
	}
	t.Logf("epochs %d to %d; the member received %d chunks, none undecryptable", first, b.Epoch(), st.Received)
}

// TestPrivateNeedsSignIn: a node with a bootstrap that is not signed in
// there cannot go live privately (the bootstrap keeps keys for signed-in
// broadcasters only), nor ask for its mutuals; it is told to sign in.
func TestPrivateNeedsSignIn(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	_, err := n.GoLive(t.Context(), node.LiveConfig{Source: sampleSource(t), Private: &node.Audience{}})
	if !errors.Is(err, node.ErrNotSignedIn) || !strings.Contains(err.Error(), "sign in") {
		t.Fatalf("GoLive private, not signed in: %v, want ErrNotSignedIn", err)
	}
	if _, err := n.ResolveAudience(t.Context(), community.Audience{Mutuals: true}); !errors.Is(err, node.ErrNotSignedIn) {
		t.Fatalf("mutuals, not signed in: %v, want ErrNotSignedIn", err)
	}
	if len(n.Broadcasts()) != 0 {
		t.Fatal("a broadcast was left")
	}
	// Without a bootstrap (nor a mailbox) there is nowhere for the keys.
	lone := newNode(t, node.Config{})
	if _, err := lone.GoLive(t.Context(), node.LiveConfig{Source: sampleSource(t), Private: &node.Audience{}}); !errors.Is(err, node.ErrNoMailbox) {
		t.Fatalf("GoLive private without a bootstrap: %v, want ErrNoMailbox", err)
	}
	if _, err := lone.ResolveAudience(t.Context(), community.Audience{Accounts: []string{"@alice"}}); !errors.Is(err, node.ErrNoMailbox) {
		t.Fatalf("an audience without a bootstrap: %v, want ErrNoMailbox", err)
	}
}

// TestPrivateLateDevice: alice is invited by handle; a second node of
// hers, not signed in, is refused; once it signs in (and publishes its
// device key), the broadcaster's node, which looks its audience up again
// every second, lets it in within seconds and it plays.
func TestPrivateLateDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 2}
	bob, phone := newNode(t, cfg), newNode(t, cfg)
	signIn(t, bob, "200")
	signIn(t, phone, "100") // alice's first device
	spec := community.Audience{Accounts: []string{"@alice"}}
	members, err := bob.ResolveAudience(t.Context(), spec)
	if err != nil || len(members) != 1 || len(members[0].Devices) != 1 {
		t.Fatalf("@alice: %+v %v", members, err)
	}
	b, err := bob.GoLive(t.Context(), node.LiveConfig{Title: "late", Source: sampleSource(t, ingest.WithLoop()),
		Private: &node.Audience{Members: members, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan []node.Member, 4)
	if err := b.KeepAudience(spec, time.Second, func(m []node.Member) { changed <- m }); err != nil {
		t.Fatal(err)
	}
	laptop := newNode(t, cfg) // alice's second device
	if _, err := laptop.Watch(t.Context(), b.Link()); !errors.Is(err, node.ErrNotMember) {
		t.Fatalf("a device not signed in: %v, want ErrNotMember", err)
	}
	signIn(t, laptop, "100")
	signedIn := time.Now()
	var w *node.Broadcast
	var tried time.Time
	waitFor(t, 30*time.Second, "alice's new device let in", func() bool {
		if time.Since(tried) < 500*time.Millisecond {
			return false // as a person would try again: not at the bootstrap's rate limit
		}
		tried = time.Now()
		w, err = laptop.Watch(t.Context(), b.Link())
		if err != nil && !errors.Is(err, node.ErrNotMember) {
			t.Fatalf("Watch: %v", err)
		}
		return err == nil
	})
	t.Logf("the new device was let in %v after it signed in", time.Since(signedIn).Round(time.Millisecond))
	select {
	case m := <-changed:
		if len(m) != 1 || len(m[0].Devices) != 2 {
			t.Fatalf("the new audience: %+v", m)
		}
	default:
		t.Fatal("KeepAudience told of no change")
	}
	waitFor(t, 30*time.Second, "the new device plays", func() bool { return status(t, w).Received >= 10 })
	if st := status(t, w); st.Undecryptable != 0 {
		t.Fatalf("%d chunks did not open", st.Undecryptable)
	}
}

// TestAudienceAPI: the broadcaster's own page changes a live private
// broadcast's audience (PUT /api/broadcasts/{id}/audience, with the page
// token): carol, added by her account key, watches within seconds, and the
// broadcaster's periodic lookup keeps her in; without the token, without
// JSON, for an unknown account, a public broadcast or an unknown ID, the
// API refuses with a clear error.
func TestAudienceAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	sms := &texts{}
	svc := startBootstrap(t, sms)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 2}
	bob, alice, carol := newNode(t, cfg), newNode(t, cfg), newNode(t, cfg)
	signIn(t, bob, "200")
	signIn(t, alice, "100")
	phoneSignIn(t, carol, sms, "+15550124")
	who, err := carol.RefreshIdentity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	carolKey := who.Provider + ":" + who.Account
	spec := community.Audience{Accounts: []string{"@alice"}}
	members, err := bob.ResolveAudience(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.GoLive(t.Context(), node.LiveConfig{Source: sampleSource(t, ingest.WithLoop()),
		Private: &node.Audience{Members: members, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.KeepAudience(spec, 500*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	public, err := bob.GoLive(t.Context(), node.LiveConfig{Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Watch(t.Context(), b.Link()); !errors.Is(err, node.ErrNotMember) {
		t.Fatalf("carol before she is added: %v", err)
	}
	put := func(id, ctype, token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, bob.HTTPURL()+"/api/broadcasts/"+id+"/audience", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Peerscope-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	tok := bob.APIToken()
	both := `{"accounts":["@alice","` + carolKey + `"]}`
	for _, tc := range []struct {
		name, id, ctype, token, body string
		want                         int
		says                         string
	}{
		{"no token", b.ID(), "application/json", "", both, http.StatusForbidden, "page token"},
		{"a form", b.ID(), "application/x-www-form-urlencoded", tok, both, http.StatusUnsupportedMediaType, "JSON"},
		{"bad JSON", b.ID(), "application/json", tok, `{"accounts":"@alice"}`, http.StatusBadRequest, "JSON"},
		{"unknown field", b.ID(), "application/json", tok, `{"who":["@alice"]}`, http.StatusBadRequest, "unknown field"},
		{"unknown account", b.ID(), "application/json", tok, `{"accounts":["@nobody"]}`, http.StatusBadRequest, "@nobody"},
		{"public", public.ID(), "application/json", tok, both, http.StatusConflict, "cannot become private"},
		{"no such broadcast", "nope", "application/json", tok, both, http.StatusNotFound, "no broadcast"},
	} {
		if st, out := put(tc.id, tc.ctype, tc.token, tc.body); st != tc.want || !strings.Contains(out, tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, st, out, tc.want, tc.says)
		}
	}
	st, out := put(b.ID(), "application/json", tok, both)
	if st != http.StatusOK || !strings.Contains(out, carolKey) || !strings.Contains(out, `"handle":"@alice"`) {
		t.Fatalf("the change: %d %s", st, out)
	}
	var w *node.Broadcast
	var tried time.Time
	waitFor(t, 30*time.Second, "carol let in", func() bool {
		if time.Since(tried) < 500*time.Millisecond {
			return false
		}
		tried = time.Now()
		w, err = carol.Watch(t.Context(), b.Link())
		return err == nil
	})
	waitFor(t, 30*time.Second, "carol plays", func() bool { return status(t, w).Received >= 5 })
	// The periodic lookup (every 0.5 s) looks up the new audience, not the
	// old: carol still plays, and is still in, ten chunks (2 s of the live
	// stream, four lookups) later.
	played := status(t, w).Received
	waitFor(t, 30*time.Second, "carol plays on", func() bool { return status(t, w).Received >= played+10 })
	req, _ := http.NewRequest(http.MethodGet, bob.HTTPURL()+"/api/broadcasts/"+b.ID()+"/audience", nil)
	req.Header.Set("Peerscope-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(got), carolKey) {
		t.Fatalf("the audience after a few lookups: %s", got)
	}
	if st := status(t, w); st.Undecryptable != 0 {
		t.Fatalf("%d chunks did not open at carol", st.Undecryptable)
	}
}

// TestWatchPublicWithBootstrapDown: a node whose bootstrap cannot be
// reached still watches a public broadcast: its mailbox's failure (no
// token) matters only if the broadcast turns out private.
func TestWatchPublicWithBootstrapDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close() // nothing listens there now
	root := newNode(t, node.Config{Slots: 2})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	viewer := newNode(t, node.Config{Bootstrap: []string{url}, NATWait: -1})
	if _, err := viewer.Watch(t.Context(), b.Link()); err != nil {
		t.Fatalf("a public broadcast, the bootstrap down: %v", err)
	}
}
