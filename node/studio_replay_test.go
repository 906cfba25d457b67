package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
)

// TestStudioReplayForPhone: the studio's end summary links the replay
// (and its share sheet the player) where the browser that asks can open
// it. A phone reached the studio at
// the machine's LAN address (or at a name the node answers to): with the
// HTTP server on every interface, its replay link is that same host at the
// HTTP port, and the page loads there; with the HTTP server on loopback
// only (the default), a phone can reach no node page, so it gets no link
// to 127.0.0.1 (which on a phone is the phone) but the local one to say
// where it is; a browser on the node's machine keeps 127.0.0.1.
func TestStudioReplayForPhone(t *testing.T) {
	for _, tc := range []struct {
		name, http string
		phoneLink  bool
	}{
		{"HTTP on every interface", "0.0.0.0:0", true},
		{"HTTP on loopback only", "127.0.0.1:0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(t.Context(), Config{HTTP: tc.http, HTTPS: "0.0.0.0:0", HostNames: []string{"studio.test"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close() })
			b, err := n.GoLive(t.Context(), LiveConfig{Title: "phone", WHIP: true})
			if err != nil {
				t.Fatal(err)
			}
			sink, err := b.pub.Publish("whip", "")
			if err != nil {
				t.Fatal(err)
			}
			testutil.Feed(t, sink, 2*time.Second)
			b.pub.Unpublish(nil)
			testutil.WaitFor(t, 20*time.Second, "the replay sealed", func() bool { return b.replayPath() != "" })

			httpsPort := strconv.Itoa(n.HTTPSAddr().(*net.TCPAddr).Port)
			httpPort := strconv.Itoa(n.HTTPAddr().(*net.TCPAddr).Port)
			local := n.HTTPURL() + "/r/" + b.ID() + "/"
			hosts := []string{"studio.test"}
			if lan := lanIPs(); len(lan) > 0 && lan[0].To4() != nil {
				hosts = append(hosts, lan[0].String())
			}
			for _, h := range append(hosts, "127.0.0.1", "localhost") {
				replay, replayLocal, player := studioReplayAt(t, n, net.JoinHostPort(h, httpsPort), b.StreamKey())
				want, wantPlayer := "", b.URLs().Player
				switch {
				case h == "127.0.0.1" || h == "localhost":
					want = local
				case tc.phoneLink:
					want = "http://" + net.JoinHostPort(h, httpPort) + "/r/" + b.ID() + "/"
					wantPlayer = "http://" + net.JoinHostPort(h, httpPort) + "/b/" + b.ID() + "/"
				}
				if replay != want || replayLocal != local || player != wantPlayer {
					t.Errorf("the studio at %s: replay %q (local %q), player %q; want %q (local %q), %q", h, replay, replayLocal, player, want, local, wantPlayer)
					continue
				}
				if want == "" || want == local {
					continue
				}
				// The link works from where the phone is: the node's HTTP
				// server answers that host.
				resp, err := phoneClient(t).Get(want)
				if err != nil {
					t.Fatal(err)
				}
				page, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<video") {
					t.Errorf("the replay at %s: %s\n%.200s", want, resp.Status, page)
				}
			}
		})
	}
}

// phoneClient is a browser on another device: it dials the host a URL
// names, studio.test being this machine (as a phone's DNS would say).
func phoneClient(t *testing.T) *http.Client {
	d := &net.Dialer{}
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, _ := net.SplitHostPort(addr); host == "studio.test" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// studioReplayAt asks GET /broadcast/live over HTTPS as a browser that
// reached the node at hostport does, and returns the summary's replay and
// replay_local, and the player link.
func studioReplayAt(t *testing.T, n *Node, hostport, key string) (string, string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+hostport+"/broadcast/live", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := phoneClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var live struct {
		Replay      string `json:"replay"`
		ReplayLocal string `json:"replay_local"`
		Player      string `json:"player"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&live); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET live at %s: %s (%v)", hostport, resp.Status, err)
	}
	return live.Replay, live.ReplayLocal, live.Player
}
