package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
	"github.com/multiformats/go-multihash"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/internal/pgtest"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// browserAddr is a WebRTC-direct address as a node lists it: with the
// hash of its DTLS certificate.
func browserAddr(t *testing.T) string {
	mh, err := multihash.Sum([]byte("a certificate"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := multibase.Encode(multibase.Base64url, mh)
	if err != nil {
		t.Fatal(err)
	}
	return "/ip4/127.0.0.1/udp/4001/webrtc-direct/certhash/" + hash
}

// webTransportAddr is a WebTransport address as a node lists it: with the
// hashes of its self-signed certificates.
func webTransportAddr(t *testing.T) string {
	a := browserAddr(t)
	hash := a[strings.LastIndex(a, "/")+1:]
	return "/ip4/127.0.0.1/udp/4001/quic-v1/webtransport/certhash/" + hash + "/certhash/" + hash
}

func getBody(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestWebLink: /w/<ID>/ is the player page of a listed live broadcast,
// which plays from the tree (api/status prefers p2p); its api/peer names
// the WebTransport and WebRTC-direct addresses of the listed link's peers
// (no other: a browser cannot dial TCP or raw QUIC), the tree's protocol of this build and
// the child slots a page offers. A broadcast that is not listed, has
// ended or is private has no api/peer; a malformed ID is refused.
func TestWebLink(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice := e.node(1)
		e.signIn(alice, "100") // the page names her, from her listing
		id := alice.broadcastID("weblink")
		a := announcement(id, "On the web", e.clock.Now(), 1)
		wrtc, wt := browserAddr(t), webTransportAddr(t)
		a.Link = "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + alice.id.String() +
			"&peer=/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + alice.id.String() +
			"&peer=" + wt + "/p2p/" + alice.id.String() +
			"&peer=" + wrtc + "/p2p/" + alice.id.String()
		if _, err := alice.c.Announce(ctx, id, a); err != nil {
			t.Fatal(err)
		}

		code, h, _ := getBody(t, e.url+"/w/"+id)
		if code != http.StatusMovedPermanently || h.Get("Location") != "/w/"+id+"/" {
			t.Errorf("GET /w/<ID>: %d to %q, want the page's directory", code, h.Get("Location"))
		}
		code, h, body := getBody(t, e.url+"/w/"+id+"/")
		if code != http.StatusOK || !strings.Contains(body, "player.js") || !strings.Contains(h.Get("Content-Security-Policy"), "media-src 'self' blob:") {
			t.Errorf("GET /w/<ID>/: %d, CSP %q, %.80q", code, h.Get("Content-Security-Policy"), body)
		}
		if code, _, body := getBody(t, e.url+"/w/"+id+"/peer.js"); code != http.StatusOK || !strings.Contains(body, "PeerscopePeer") {
			t.Errorf("GET peer.js: %d", code)
		}
		var st struct {
			Title  string
			Live   bool
			Ended  bool
			Prefer string
		}
		_, _, body = getBody(t, e.url+"/w/"+id+"/api/status")
		if err := json.Unmarshal([]byte(body), &st); err != nil || st.Title != "On the web" || !st.Live || st.Ended || st.Prefer != "p2p" {
			t.Errorf("api/status: %s (%v)", body, err)
		}
		// Who broadcasts, and what the page's Share offers besides itself.
		var who struct {
			Who  *player.Person
			Link string
		}
		if err := json.Unmarshal([]byte(body), &who); err != nil || who.Link != a.Link || who.Who == nil ||
			*who.Who != (player.Person{Provider: "twitter", Account: "100", Handle: "@alice", Name: "Alice Example", Avatar: "https://pbs.example/alice.png"}) {
			t.Errorf("api/status: %s, want Alice Example from Twitter and the listed link", body)
		}
		var p struct {
			Broadcast, Protocol string
			Addrs               []string
			Slots               int
		}
		code, _, body = getBody(t, e.url+"/w/"+id+"/api/peer")
		if err := json.Unmarshal([]byte(body), &p); err != nil || code != http.StatusOK {
			t.Fatalf("api/peer: %d %s (%v)", code, body, err)
		}
		if want := []string{wt + "/p2p/" + alice.id.String(), wrtc + "/p2p/" + alice.id.String()}; p.Broadcast != id || !slices.Equal(p.Addrs, want) ||
			p.Protocol != string(p2p.ProtocolID)+"/"+id || p.Slots != bootstrap.WebLinkSlots {
			t.Errorf("api/peer: %+v, want the broadcast, %s, addrs %q, %d slots", p, p2p.ProtocolID, want, bootstrap.WebLinkSlots)
		}

		// A broadcaster not signed in is said to be anonymous, not left unknown.
		bob := e.node(2)
		anon := bob.broadcastID("anonymous")
		if _, err := bob.c.Announce(ctx, anon, announcement(anon, "Nobody in particular", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		var who2 struct {
			Who       *player.Person
			Anonymous bool
		}
		if _, _, body := getBody(t, e.url+"/w/"+anon+"/api/status"); json.Unmarshal([]byte(body), &who2) != nil || who2.Who != nil || !who2.Anonymous {
			t.Errorf("api/status of an anonymous broadcaster's: %s", body)
		}

		// Not listed: the page loads but has nowhere to join.
		other := alice.broadcastID("unlisted")
		if code, _, _ := getBody(t, e.url+"/w/"+other+"/api/peer"); code != http.StatusNotFound {
			t.Errorf("api/peer of an unlisted broadcast: %d", code)
		}
		_, _, body = getBody(t, e.url+"/w/"+other+"/api/status")
		if err := json.Unmarshal([]byte(body), &st); err != nil || !st.Ended || st.Live {
			t.Errorf("api/status of an unlisted broadcast: %s", body)
		}
		for _, path := range []string{"/w/not-an-id/", "/w/not-an-id", "/w/%2F%2Fevil.example"} {
			if code, h, _ := getBody(t, e.url+path); code != http.StatusBadRequest {
				t.Errorf("GET %s: %d to %q, want 400", path, code, h.Get("Location"))
			}
		}

		// A link with nothing a browser can dial.
		tcpOnly := alice.broadcastID("tcponly")
		if _, err := alice.c.Announce(ctx, tcpOnly, announcement(tcpOnly, "TCP only", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := getBody(t, e.url+"/w/"+tcpOnly+"/api/peer"); code != http.StatusNotFound {
			t.Errorf("api/peer of a link without WebRTC-direct: %d", code)
		}

		// Private: no web link.
		priv := alice.broadcastID("private")
		pa := announcement(priv, "Friends only", e.clock.Now(), 1)
		pa.Link, pa.Private = strings.Replace(a.Link, id, priv, 1), true
		if _, err := alice.c.Announce(ctx, priv, pa); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := getBody(t, e.url+"/w/"+priv+"/api/peer"); code != http.StatusNotFound {
			t.Errorf("api/peer of a private broadcast: %d", code)
		}

		// Ended: none either, and the page says so.
		e.clock.Advance(time.Second)
		end := a
		end.Version, end.Ended = 2, e.clock.Now()
		if _, err := alice.c.Announce(ctx, id, end); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := getBody(t, e.url+"/w/"+id+"/api/peer"); code != http.StatusNotFound {
			t.Errorf("api/peer of an ended broadcast: %d", code)
		}
		_, _, body = getBody(t, e.url+"/w/"+id+"/api/status")
		if err := json.Unmarshal([]byte(body), &st); err != nil || !st.Ended || st.Live || strings.Contains(body, "replay_link") {
			t.Errorf("api/status of an ended broadcast: %s", body)
		}
		// Its replay listed: the page offers the link a node plays it from,
		// until the directory drops it, 24 hours after the end.
		if _, err := alice.c.PublishReplay(ctx, id, "bafy-manifest"); err != nil {
			t.Fatal(err)
		}
		var ended struct {
			Ended      bool
			ReplayLink string `json:"replay_link"`
		}
		_, _, body = getBody(t, e.url+"/w/"+id+"/api/status")
		if err := json.Unmarshal([]byte(body), &ended); err != nil || !ended.Ended || ended.ReplayLink != a.Link {
			t.Errorf("api/status of an ended broadcast with a replay: %s, want replay_link %s", body, a.Link)
		}
		e.clock.Advance(25 * time.Hour)
		if _, _, body = getBody(t, e.url+"/w/"+id+"/api/status"); strings.Contains(body, "replay_link") {
			t.Errorf("api/status 25 h after the end: %s", body)
		}
	})
}

// TestBrowserDialableNamesThePeer: every address api/peer gives ends in
// the /p2p/ of the peer it reaches, a page's circuit through a node's
// relay too (which names the relay with /p2p/ before it: that address
// once went out without the page's ID, and the page dialled nobody).
func TestBrowserDialableNamesThePeer(t *testing.T) {
	key := func(seed byte) peer.ID {
		_, pub, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	broadcaster, relay, page := key(1), key(2), key(3)
	direct := browserAddr(t)
	circuit := direct + "/p2p/" + relay.String() + "/p2p-circuit/webrtc"
	l := "peerscope://" + link.NewBroadcastID(broadcaster) + "?peer=" + direct + "/p2p/" + broadcaster.String() +
		"&peer=" + circuit + "/p2p/" + page.String()
	got := bootstrap.BrowserDialable(l)
	want := []string{direct + "/p2p/" + broadcaster.String(), circuit + "/p2p/" + page.String()}
	if !slices.Equal(got, want) {
		t.Errorf("BrowserDialable(%s)\n = %q\nwant %q", l, got, want)
	}
}
