package node_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
)

// TestJoinErrorsAreGeneric: the directory's join, asked to dial a port
// that refuses and one that speaks something else, says the same thing:
// no port-scanning oracle.
func TestJoinErrorsAreGeneric(t *testing.T) {
	n := newNode(t, node.Config{})
	token := pageToken(t, n.HTTPURL()+"/directory/")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	otherPort := other.Listener.Addr().(*net.TCPAddr).Port
	bodies := map[string]int{}
	for i, port := range []int{closedPort, otherPort} {
		_, id := testutil.SeededPeer(byte(7 + i))
		l := fmt.Sprintf("peerscope://%s.aaaaaaaa?peer=/ip4/127.0.0.1/tcp/%d/p2p/%s", id, port, id)
		if _, err := link.Parse(l); err != nil {
			t.Fatal(err)
		}
		code, body := (request{method: "POST", url: n.HTTPURL() + "/directory/api/node/watch", contentType: "application/json",
			token: token, body: `{"link":"` + l + `"}`}).do(t)
		if code == http.StatusOK {
			t.Fatalf("joined a link to port %d: %s", port, body)
		}
		t.Logf("port %d: %d %s", port, code, body)
		bodies[fmt.Sprint(code, body)]++
	}
	if len(bodies) != 1 {
		t.Fatalf("a refused port and a port that speaks HTTP answered differently: %v", bodies)
	}
}

// TestWatchCap: a node joins at most Config.MaxWatching broadcasts at once.
func TestWatchCap(t *testing.T) {
	root := newNode(t, node.Config{})
	v := newNode(t, node.Config{})
	var bs []*node.Broadcast
	for i := range node.DefaultMaxWatching + 1 {
		b, err := root.GoLive(t.Context(), node.LiveConfig{Title: fmt.Sprint(i), Source: gated{make(chan struct{}), sampleSource(t)}})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	for i, b := range bs {
		_, err := v.Watch(t.Context(), b.Link())
		switch {
		case i < node.DefaultMaxWatching && err != nil:
			t.Fatalf("watch %d: %v", i, err)
		case i == node.DefaultMaxWatching && !errors.Is(err, node.ErrTooMany):
			t.Fatalf("watch %d past the cap: %v, want ErrTooMany", i, err)
		}
	}
	// One ends: there is room again.
	_ = v.Lookup(bs[0].ID()).Close()
	if _, err := v.Watch(t.Context(), bs[node.DefaultMaxWatching].Link()); err != nil {
		t.Fatalf("watch after one closed: %v", err)
	}
}

// TestDirectoryJoinAfterTheEnd: a click on an ended broadcast in a node's
// directory (its Replay tab, or a late click on Watch) opens its replay,
// while the broadcaster still has the broadcast open (the announcement
// says it ended) and after it closed it (no announcement any more; its
// store still holds the replay). The node's web link of it then goes to
// the replay too.
func TestDirectoryJoinAfterTheEnd(t *testing.T) {
	root := newNode(t, node.Config{Slots: 2})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "over", Source: clipFor(t, 3*time.Second, 4)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the broadcast did not end")
	}
	waitFor(t, 20*time.Second, "the manifest", func() bool { return b.ReplayManifest() != nil })
	join := func(phase string) {
		t.Helper()
		v := newNode(t, node.Config{Slots: node.NoRelay})
		code, body := (request{method: "POST", url: v.HTTPURL() + "/directory/api/node/watch", contentType: "application/json",
			token: pageToken(t, v.HTTPURL()+"/directory/"), body: `{"link":"` + b.Link().String() + `"}`}).do(t)
		want := `"/r/` + b.ID() + `/"`
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %s, want the replay's page %s", phase, code, body, want)
		}
		if page := string(get(t, v.HTTPURL()+"/r/"+b.ID()+"/")); !strings.Contains(page, "<video") {
			t.Fatalf("%s: the replay's page:\n%.300s", phase, page)
		}
		// The web link on this node now goes to the replay it holds.
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(v.HTTPURL() + "/directory/w/" + b.ID() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/r/"+b.ID()+"/" {
			t.Fatalf("%s: the node's web link: %d to %q, want its replay", phase, resp.StatusCode, loc)
		}
	}
	join("ended, still open")
	_ = b.Close()
	join("closed")
}
