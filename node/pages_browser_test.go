package node_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestPagesUnderPolicy opens every page a node serves — the index, a live
// player (and its owner's view), a replay, the go-live page over HTTP and
// HTTPS (and with a stream key, which shows who can watch), the directory
// — and the bootstrap's web link of the live broadcast, in headless
// Chromium at a phone's size and two tablets' (and those with a video on
// a phone turned sideways) (tests/browser/pages.mjs): each page's own Content-Security-Policy must
// refuse nothing it needs, no page may log an error or scroll sideways.
// PEERSCOPE_SHOTS=DIR keeps a screenshot of each page at each size, to
// look at.
func TestPagesUnderPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	n, err := node.New(t.Context(), node.Config{Bootstrap: []string{svc.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	live, err := n.GoLive(t.Context(), node.LiveConfig{Title: "pages under policy", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	phone, err := n.GoLive(t.Context(), node.LiveConfig{Title: "from a phone", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	short, err := n.GoLive(t.Context(), node.LiveConfig{Title: "ten seconds", Source: sampleSource(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitHLS(t, live, 30*time.Second)
	var replay string
	waitFor(t, 40*time.Second, "the short broadcast's replay", func() bool {
		for _, b := range n.Infos(t.Context()) {
			if b.ID == short.ID() && b.Replay != "" {
				replay = b.Replay
			}
		}
		return replay != ""
	})
	code, _ := postChat(t, live.URLs().Player+"chat/comment", "", map[string]string{"text": "a comment on the page"})
	if code != 200 {
		t.Fatalf("comment: %d", code)
	}

	// Every page at a phone's size and both tablets'. (The tablets were
	// looked at only with PEERSCOPE_SHOTS: the owner's page at tablet
	// size then logged a 429, its WebRTC session refused because the
	// player pages before it had not deleted theirs when they closed.)
	sizes := []string{"phone", "tablet", "portrait"}
	args := []string{"--wait", "2500", "--sizes", strings.Join(sizes, ","),
		"--page", "index=" + n.HTTPURL() + "/",
		"--page", "player=" + live.URLs().Player,
		"--page", "owner=" + live.OwnerURL(),
		"--page", "replay=" + n.HTTPURL() + replay,
		"--page", "golive=" + n.HTTPURL() + "/broadcast/",
		"--page", "golive-https=" + n.HTTPSURL() + "/broadcast/",
		"--page", "golive-key=" + n.HTTPSURL() + "/broadcast/#key=" + phone.StreamKey(), // its "Who can watch"
		"--page", "directory=" + n.HTTPURL() + "/directory/",
		"--page", "weblink=" + svc.URL() + "/w/" + live.ID() + "/", // the same player, served by the bootstrap
	}
	for _, p := range lookAt(t, 3*time.Minute, 9*len(sizes), args...) {
		t.Logf("%s at %s: %q", p.Name, p.Size, p.Text)
		if strings.TrimSpace(p.Text) == "" {
			t.Errorf("%s at %s shows nothing", p.Name, p.Size)
		}
	}
	// The pages with a video, on a phone turned sideways (844x390).
	for _, p := range lookAt(t, 2*time.Minute, 4, "--wait", "2500", "--sizes", "landscape",
		"--page", "player="+live.URLs().Player,
		"--page", "owner="+live.OwnerURL(),
		"--page", "replay="+n.HTTPURL()+replay,
		"--page", "weblink="+svc.URL()+"/w/"+live.ID()+"/") {
		t.Logf("%s at %s: %q", p.Name, p.Size, p.Text)
		if strings.TrimSpace(p.Text) == "" {
			t.Errorf("%s at %s shows nothing", p.Name, p.Size)
		}
	}
}

// pageLook is what tests/browser/pages.mjs reports of a page at one size.
type pageLook struct {
	Name, Size, Text, All string
	Errors, Violations    []string
	Sideways              bool
}

// lookAt runs tests/browser/pages.mjs with args and returns the want pages
// it looked at (pages × sizes); a console error, a policy violation or
// sideways scrolling on any of them is a test error. PEERSCOPE_SHOTS=DIR
// keeps their screenshots there, to look at.
func lookAt(t *testing.T, timeout time.Duration, want int, args ...string) []pageLook {
	t.Helper()
	if shots := os.Getenv("PEERSCOPE_SHOTS"); shots != "" {
		args = append(args, "--shots", shots)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "pages.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error string
		Pages []pageLook
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("pages.mjs printed %s: %v", out, err)
	}
	if r.Error != "" || len(r.Pages) != want {
		t.Fatalf("pages.mjs: %q, %d pages looked at, want %d", r.Error, len(r.Pages), want)
	}
	for _, p := range r.Pages {
		if len(p.Errors) > 0 || len(p.Violations) > 0 || p.Sideways {
			t.Errorf("%s at %s: violations %q, errors %q, sideways scroll %v", p.Name, p.Size, p.Violations, p.Errors, p.Sideways)
		}
	}
	return r.Pages
}
