package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/bootstrap/xstandin"
	"github.com/peerscope/peerscope/node"
)

// TestLiveNoticesOverPubSub: a bootstrap (libp2p host with GossipSub, and
// its HTTP service) publishes go-live notices on LiveTopic; a node that
// reaches it as a bootstrap peer and is signed in as someone who follows
// alice hears alice go live, and neither an anonymous broadcaster nor a
// peer that is not its bootstrap publishing in alice's name.
func TestLiveNoticesOverPubSub(t *testing.T) {
	if testing.Short() {
		t.Skip("real hosts")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, live := bootstrapPublisher(t, ctx)
	var x *xstandin.Provider
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{OnLive: live.Notify, PeerInfo: func() (string, []string) { return h.ID().String(), nil }},
		Configure: func(u string, c *bootstrap.ServerConfig) {
			c.Twitter = bootstrap.TwitterConfig{ClientID: "test", AuthorizeURL: u + "/x/i/oauth2/authorize",
				TokenURL: u + "/x/2/oauth2/token", APIURL: u + "/x/2"}
			x = xstandin.New(xstandin.Config{ClientID: "test", RedirectURIs: []string{u + "/api/v1/auth/twitter/callback"}})
			x.AddUser(xstandin.User{ID: "100", Username: "alice", Name: "Alice"})
			x.AddUser(xstandin.User{ID: "200", Username: "bob", Name: "Bob"})
		}})
	if err != nil {
		t.Fatal(err)
	}
	svc.Server.Mount("/x/", x)
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	heard := make(chan *api.Listing, 8)
	bob := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, NATWait: -1,
		BootstrapPeers: []peer.AddrInfo{{ID: h.ID(), Addrs: h.Host().Addrs()}},
		OnLive:         func(b *api.Listing) { heard <- b }})
	signIn(t, bob, "200")
	bobClient := &api.Client{Base: svc.URL(), Key: bob.Host().Peerstore().PrivKey(bob.ID())}
	if err := bobClient.Follow(ctx, "twitter:100"); err != nil {
		t.Fatal(err)
	}

	// alice: a client signed in through the stand-in; anon: nobody.
	client := func(user string) *api.Client {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &api.Client{Base: svc.URL(), Key: priv}
		if user != "" {
			start, err := c.TwitterStart(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			jar, _ := cookiejar.New(nil)
			resp, err := (&http.Client{Jar: jar}).Get(start.AuthorizeURL + "&login=" + user)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("sign-in: %v %v", resp, err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if _, err := c.TwitterFinish(ctx, codeOnPage(t, string(page))); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	alice, anon := client("100"), client("")
	idOf := func(c *api.Client, nonce string) string {
		p, _ := peer.IDFromPrivateKey(c.Key)
		return p.String() + "." + nonce
	}
	announce := func(c *api.Client, id, title string) {
		broadcaster, _, _ := strings.Cut(id, ".")
		a := api.ListingUpdate{Title: title, Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + broadcaster, Started: time.Now(), Version: 1}
		if _, err := c.Announce(ctx, id, a); err != nil {
			t.Fatal(err)
		}
	}
	// A forger: a peer of bob's node on the topic, publishing well-formed
	// notices in alice's name. Its messages reach bob first (a direct
	// link), so if bob's node took notices from any origin, the first it
	// heard would be forged.
	forger, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	fps, err := pubsub.NewGossipSub(ctx, forger)
	if err != nil {
		t.Fatal(err)
	}
	ftopic, err := fps.Join(api.LiveTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := forger.Connect(ctx, peer.AddrInfo{ID: bob.ID(), Addrs: bob.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the forger to see bob's node on the topic", func() bool {
		return slices.Contains(ftopic.ListPeers(), bob.ID())
	})
	forged := func(i int) []byte {
		id := forger.ID().String() + ".forged" + string(rune('a'+i%26))
		b, _ := json.Marshal(api.LiveNotice{Listing: &api.Listing{ID: id, Broadcaster: forger.ID().String(),
			Title: "forged", Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + forger.ID().String(), Started: time.Now(), Version: 1,
			Who: &api.Account{Provider: "twitter", Subject: "100", Handle: "@alice"}}})
		return b
	}

	// The notice goes out once; the node's subscription may not have
	// reached the bootstrap's GossipSub yet: new broadcasts until one is
	// heard.
	deadline := time.After(30 * time.Second)
	for i := 0; ; i++ {
		if err := ftopic.Publish(ctx, forged(i)); err != nil {
			t.Fatal(err)
		}
		announce(anon, idOf(anon, "anon"+string(rune('a'+i%26))), "anonymous")
		id := idOf(alice, "live"+string(rune('a'+i%26)))
		announce(alice, id, "alice live")
		select {
		case b := <-heard:
			if b.Who == nil || b.Who.Handle != "@alice" || b.Title != "alice live" {
				t.Fatalf("heard %+v", b)
			}
			return
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("no go-live notice reached the follower's node")
		}
	}
}

// bootstrapPublisher starts a bootstrap's libp2p host on loopback with
// GossipSub and its publisher of go-live notices and reminders, closed
// when the test ends.
func bootstrapPublisher(t *testing.T, ctx context.Context) (*bootstrap.Host, *bootstrap.LivePublisher) {
	t.Helper()
	h, err := bootstrap.NewHost(ctx, bootstrap.HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h.Host())
	if err != nil {
		t.Fatal(err)
	}
	live, err := bootstrap.NewLivePublisher(ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Close() })
	return h, live
}
