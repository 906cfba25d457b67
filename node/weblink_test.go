package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// webLinkPage is one page of tests/browser/weblink.mjs.
type webLinkPage struct {
	URL            string         `json:"url"`
	Link           string         `json:"link"`
	Mode           string         `json:"mode"`
	PeerID         string         `json:"peerID"`
	FirstFrameMs   *int           `json:"firstFrameMs"` // click → first frame, the page's own clock
	Times          map[string]int `json:"times"`        // the player's startup steps, the page's own clock
	SeenMs         int            `json:"seenMs"`       // click → first frame, seen from the test
	Advanced       float64        `json:"advanced"`
	Stalls         int            `json:"stalls"`
	MaxStallMs     int            `json:"maxStallMs"`
	Waiting        int            `json:"waiting"` // the video's waiting events
	LatencySamples []int          `json:"latencySamples"`
	Peer           *webLinkPeer   `json:"peer"`
	Window         webLinkWindow  `json:"window"`
	Errors         []string       `json:"errors"`
	Log            []string       `json:"log"`
	StartLog       []string       `json:"startLog"` // the page's log up to its first frame
}

type webLinkPeer struct {
	browsertest.PeerLeaf
	Slots     int    `json:"slots"`
	ParentVia string `json:"parentVia"` // "browser" or "node": how the page reaches its parent
	// ParentTransport is the connection's: "webtransport" or
	// "webrtc-direct" to a node, "webrtc" to a browser.
	ParentTransport string `json:"parentTransport"`
	Reachable       string `json:"reachable"`
	// Welcomed counts the accepts that adopted the page beyond a full
	// node's slots (mesh/welcome.go): its first frame came from there, and
	// a handover to room below followed.
	Welcomed int `json:"welcomed"`
	// Times are the light node's startup steps and Dials its dials
	// (web/peer's stats()), on the page's own clock.
	Times map[string]int `json:"times"`
	Dials []struct {
		Peer  string `json:"peer"`
		Via   string `json:"via"` // "node-wt" (WebTransport), "node" (WebRTC-direct), "browser", "open"
		At    int    `json:"at"`
		Ms    int    `json:"ms"`
		OK    bool   `json:"ok"`
		Stage string `json:"stage"` // the dial's last progress event
		// Signalling is when a dial to a browser had the relay's
		// connection and began signalling (ms from At; 0: never).
		Signalling int `json:"signalling"`
	} `json:"dials"`
}

type webLinkWindow struct {
	Ms        int            `json:"ms"`
	BytesFrom map[string]int `json:"bytesFrom"`
	BytesTo   map[string]int `json:"bytesTo"`
	CPU       struct {
		BusyMs, DecodeMs, StepMs, TickMs, VerifyWaitMs, LongTaskMs int
	} `json:"cpu"`
	TaskMs   int `json:"taskMs"`
	ScriptMs int `json:"scriptMs"`
}

// TestWebLinkPages is issue 14's headline: a broadcaster lists its
// broadcast at a community bootstrap; 3 full nodes watch it (the
// broadcaster's 3 slots, one slot each); then 8 pages, each in a Chromium
// context of its own, open the bootstrap's directory page and click the
// broadcast's Watch link, its web link (/w/<ID>/ on the bootstrap, which
// is in no tree and carries no media). Each page joins the tree itself,
// offering the 2 child slots a web link's page offers, and all 8 play for
// 30 s with no stall. The full nodes have room for 3 of them: the other 5
// must be fed by pages, which each page's own light node says (its parent
// reached over browser-to-browser WebRTC).
//
// Logged for docs/BENCHMARKS.md: per page its first frame after the click,
// latency, stalls, parent and the light node's CPU; startup p50 and max,
// latency p50 and p95; the full nodes' upload to browsers beside what
// WHEP to 8 browsers would cost them. PEERSCOPE_WEBLINK_PAGES changes the
// number of pages.
func TestWebLinkPages(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	pages := 8
	if s := os.Getenv("PEERSCOPE_WEBLINK_PAGES"); s != "" {
		pages, _ = strconv.Atoi(s)
	}
	log, _ := newLogs(t, slog.LevelInfo)
	svc := startBootstrap(t)
	root := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second, Slots: 1,
		Logger: log.With("node", "broadcaster")})
	const title = "Clip, from the web link"
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: title, Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	var full []*node.Node
	var watching []*node.Broadcast
	for i := range 3 {
		n := newNode(t, node.Config{Slots: 2, Logger: log.With("node", fmt.Sprintf("full%d", i))})
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		full, watching = append(full, n), append(watching, w)
	}
	for i, w := range watching {
		waitFor(t, 30*time.Second, fmt.Sprintf("full node %d in the tree", i), func() bool { return depth(t, w) > 0 && received(t, w) > 10 })
	}
	for i, w := range watching {
		t.Logf("full node %d at depth %d", i, depth(t, w))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "weblink.mjs", "--directory", svc.URL()+"/", "--title", title,
		"--pages", strconv.Itoa(pages), "--seconds", "30")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error string        `json:"error"`
		Pages []webLinkPage `json:"pages"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("weblink.mjs printed %.300q: %v", out, err)
	}
	if r.Error != "" || len(r.Pages) != pages {
		t.Fatalf("weblink.mjs: %q, %d pages of %d", r.Error, len(r.Pages), pages)
	}

	kind := map[string]string{root.ID().String(): "broadcaster"}
	for i, n := range full {
		kind[n.ID().String()] = fmt.Sprintf("full node %d", i)
	}
	for i, p := range r.Pages {
		kind[p.PeerID] = fmt.Sprintf("page %d", i)
	}
	name := func(id string) string {
		if k, ok := kind[id]; ok {
			return k
		}
		return "…" + shortID(id)
	}
	var startups, latencies []int
	var fromFull, fromRoot, received, byBrowsers int
	var relayBusy, leafBusy []float64
	fedByBrowser, overWebTransport := 0, 0
	for i, p := range r.Pages {
		if p.Peer == nil || p.FirstFrameMs == nil {
			t.Fatalf("page %d reports no light node or no first frame\n%s", i, strings.Join(p.Log, "\n"))
		}
		startups = append(startups, *p.FirstFrameMs)
		latencies = append(latencies, p.LatencySamples...)
		secs := float64(p.Window.Ms) / 1000
		var in int
		for from, n := range p.Window.BytesFrom {
			in += n
			switch k := kind[from]; {
			case k == "broadcaster":
				fromRoot += n
			case strings.HasPrefix(k, "full node"):
				fromFull += n
			case strings.HasPrefix(k, "page"):
				byBrowsers += n
			}
		}
		received += in
		busy := float64(p.Window.CPU.BusyMs) / secs
		if len(p.Peer.Children) > 0 {
			relayBusy = append(relayBusy, busy)
		} else {
			leafBusy = append(leafBusy, busy)
		}
		var kids []string
		for _, c := range p.Peer.Children {
			kids = append(kids, name(c))
		}
		l := summarize(p.LatencySamples)
		if p.Peer.ParentTransport == "webtransport" {
			overWebTransport++
		}
		t.Logf("page %d: parent %s (via %s over %s) at depth %d, children %v; first frame %d ms after the click (seen %d ms); latency p50 %d ms p95 %d ms; advanced %.1f s, %d stalls (longest still %d ms, %d waiting); %d chunks verified, %d forged; in %.0f kb/s, out %.0f kb/s; light node busy %.1f ms/s (decode %d, step+forward %d, tick %d ms; verify wait %d ms), main thread %.0f ms/s (script %.0f), long tasks %d ms",
			i, name(p.Peer.Parent), p.Peer.ParentVia, p.Peer.ParentTransport, p.Peer.Depth, kids, *p.FirstFrameMs, p.SeenMs, l.p50, l.p95,
			p.Advanced, p.Stalls, p.MaxStallMs, p.Waiting, p.Peer.Chunks, p.Peer.Forged,
			float64(in)*8/1000/secs, float64(sum(p.Window.BytesTo))*8/1000/secs,
			busy, p.Window.CPU.DecodeMs, p.Window.CPU.StepMs, p.Window.CPU.TickMs, p.Window.CPU.VerifyWaitMs,
			float64(p.Window.TaskMs)/secs, float64(p.Window.ScriptMs)/secs, p.Window.CPU.LongTaskMs)

		t.Logf("page %d startup: %s", i, startupSteps(p))
		if *p.FirstFrameMs > 3000 {
			t.Logf("page %d took %d ms to its first frame:\n%s", i, *p.FirstFrameMs, strings.Join(p.StartLog, "\n"))
		}
		if p.Mode != "p2p" || p.Advanced < 28 || p.Stalls > 0 || len(p.Errors) > 0 {
			t.Errorf("page %d: mode %q, advanced %.1f s in 30 s, %d stalls (max %d ms), errors %q\n%s",
				i, p.Mode, p.Advanced, p.Stalls, p.MaxStallMs, p.Errors, strings.Join(p.Log, "\n"))
		}
		if !strings.Contains(p.URL, "/w/"+b.ID()+"/") || !strings.HasPrefix(p.URL, svc.URL()) {
			t.Errorf("page %d followed the directory's link to %s, want the bootstrap's web link", i, p.URL)
		}
		if p.Peer.Forged > 0 || p.Peer.Verifier != "webcrypto" || p.Peer.Chunks < 100 {
			t.Errorf("page %d: %d chunks verified (by %q), %d forged", i, p.Peer.Chunks, p.Peer.Verifier, p.Peer.Forged)
		}
		if p.Peer.Slots != 2 {
			t.Errorf("page %d offers %d slots, want the web link's 2", i, p.Peer.Slots)
		}
		// Fed by a browser, as the page itself sees it: its parent is
		// reached over browser-to-browser WebRTC, and is one of the pages.
		if p.Peer.ParentVia == "browser" {
			if !strings.HasPrefix(kind[p.Peer.Parent], "page") {
				t.Errorf("page %d says a browser feeds it, but its parent %s is %s", i, shortID(p.Peer.Parent), name(p.Peer.Parent))
			}
			fedByBrowser++
		} else if p.Peer.ParentVia != "node" || strings.HasPrefix(kind[p.Peer.Parent], "page") {
			t.Errorf("page %d reaches its parent %s via %q", i, name(p.Peer.Parent), p.Peer.ParentVia)
		}
	}
	st, lat := summarize(startups), summarize(latencies)
	secs := float64(r.Pages[0].Window.Ms) / 1000
	perPage := float64(received) * 8 / 1000 / secs / float64(len(r.Pages))
	welcomed := 0
	for _, p := range r.Pages {
		if p.Peer.Welcomed > 0 {
			welcomed++
		}
	}
	t.Logf("%d pages: first frame after the click p50 %d ms, max %d ms; latency p50 %d ms, p95 %d ms (%d samples); %d fed by a browser, %d by a node over WebTransport; %d welcomed by a full node first",
		len(r.Pages), st.p50, st.max, lat.p50, lat.p95, len(latencies), fedByBrowser, overWebTransport, welcomed)
	t.Logf("upload to browsers over %.1f s: the full nodes %.0f kb/s, the broadcaster %.0f kb/s, browsers %.0f kb/s; WHEP or LL-HLS to %d browsers would cost the full nodes %d × %.0f = %.0f kb/s",
		secs, float64(fromFull)*8/1000/secs, float64(fromRoot)*8/1000/secs, float64(byBrowsers)*8/1000/secs,
		len(r.Pages), len(r.Pages), perPage, perPage*float64(len(r.Pages)))
	t.Logf("the light node's main-thread busy time: relaying pages %v ms/s (mean %.1f), leaf pages %v ms/s (mean %.1f)",
		rounded(relayBusy), mean(relayBusy), rounded(leafBusy), mean(leafBusy))
	// The full nodes' slots for browsers are 4 at most (2 each; one of
	// them feeds the other two): the pages beyond, at least 3 of 8, must
	// be fed by pages.
	if want := min(3, max(0, len(r.Pages)-4)); fedByBrowser < want {
		t.Errorf("%d pages fed by a browser, want at least %d", fedByBrowser, want)
	}
}

// startupSteps says where a page's startup went: each step's time on the
// page's clock (from the navigation the click started), then the dials.
func startupSteps(p webLinkPage) string {
	at := func(m map[string]int, k string) string {
		if v, ok := m[k]; ok {
			return strconv.Itoa(v)
		}
		return "-"
	}
	s := fmt.Sprintf("script %s, api/peer %s, peer.js %s, MSE %s, start %s, libp2p %s, attached %s, first chunk %s, first frame %d ms; dials",
		at(p.Times, "script"), at(p.Times, "api"), at(p.Times, "peerjs"), at(p.Times, "mse"),
		at(p.Peer.Times, "start"), at(p.Peer.Times, "libp2p"), at(p.Peer.Times, "attached"), at(p.Peer.Times, "firstChunk"), *p.FirstFrameMs)
	for _, d := range p.Peer.Dials {
		if d.At > *p.FirstFrameMs {
			break
		}
		ok := "ok"
		if !d.OK {
			ok = "failed at " + d.Stage
		}
		relay := ""
		if d.Signalling > 0 {
			relay = fmt.Sprintf(" (signalling from %d ms)", d.Signalling)
		}
		s += fmt.Sprintf(" …%s (%s) at %d: %d ms%s %s;", d.Peer, d.Via, d.At, d.Ms, relay, ok)
	}
	return s
}

type spread struct{ p50, p95, max int }

func summarize(xs []int) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	at := func(q float64) int { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return spread{p50: at(0.5), p95: at(0.95), max: s[len(s)-1]}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func rounded(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return out
}

// TestWebLinkPagesFit opens the bootstrap's directory page, which lists a
// live broadcast with its web link, and that web link's page, in headless
// Chromium at a phone's and two tablets' sizes (tests/browser/pages.mjs):
// under their own Content-Security-Policy, neither may log an error, have
// anything refused or scroll sideways.
func TestWebLinkPagesFit(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	root := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second, Slots: 2})
	const title = "A rather long title for a live broadcast, to see that it fits on a phone"
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: title, Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the broadcast in the directory", func() bool {
		resp, err := http.Get(svc.URL() + "/w/" + b.ID() + "/api/peer")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	args := []string{"--wait", "2500", "--sizes", "phone,tablet,portrait",
		"--page", "directory=" + svc.URL() + "/", "--page", "weblink=" + svc.URL() + "/w/" + b.ID() + "/"}
	for _, p := range lookAt(t, 2*time.Minute, 6, args...) {
		t.Logf("%s at %s: %q", p.Name, p.Size, p.Text)
	}
}

// TestEndedWebLinkOffersTheReplay: the bootstrap's web link of a broadcast
// that ended, its replay listed, offers the command that plays the replay
// with a node, and fits a phone and two tablets (tests/browser/pages.mjs)
// without errors; the node's own web link goes to the replay it holds.
func TestEndedWebLinkOffersTheReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	root := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second, Slots: 2})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "Over, with a replay", Source: clipFor(t, 3*time.Second, 4)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the replay offered", func() bool {
		return strings.Contains(string(get(t, svc.URL()+"/w/"+b.ID()+"/api/status")), `"replay_link"`)
	})
	args := []string{"--wait", "2500", "--sizes", "phone,tablet,portrait", "--page", "ended=" + svc.URL() + "/w/" + b.ID() + "/"}
	for _, p := range lookAt(t, 2*time.Minute, 3, args...) {
		if !strings.Contains(p.All, "has ended") || !strings.Contains(p.All, "peerscope watch '"+b.Link().String()+"'") {
			t.Errorf("%s at %s offers no replay:\n%s", p.Name, p.Size, p.All)
		}
	}
}
