package node_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// TestStudioSummaryOnPhone goes live from the go-live page opened at the
// machine's LAN address, as a phone on the network does, and ends
// (tests/browser/studio-phone.mjs, fake camera): with the node's web
// server on every interface, the summary links the replay at that LAN
// address, and the link plays there; with it on loopback only (the
// default), the summary links nothing a phone would open as itself, and
// says the replay is on the computer running the node, at its 127.0.0.1
// address, and how to open it to the phone. At 390x844, 844x390, 1024x768
// and 768x1024: no sideways scroll, no console error.
func TestStudioSummaryOnPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	start := func(cfg node.Config) *node.Node {
		n, err := node.New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	open := start(node.Config{HTTP: "0.0.0.0:0", HTTPS: "0.0.0.0:0"})
	closed := start(node.Config{HTTPS: "0.0.0.0:0"})
	var urls []string
	var ids []string
	for _, n := range []*node.Node{open, closed} {
		b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "from the phone", WHIP: true})
		if err != nil {
			t.Fatal(err)
		}
		pages := b.URLs().BroadcasterPagesLAN
		if len(pages) == 0 {
			t.Skip("no LAN address on this machine")
		}
		urls, ids = append(urls, pages[0]), append(ids, b.ID()) // the likeliest LAN address (no certificate names here)
	}
	u, err := url.Parse(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	lanHost := u.Hostname()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "studio-phone.mjs", "--url", urls[0], "--url", urls[1])
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error  string
		Errors []string
		Pages  []struct {
			URL   string
			Sizes []struct {
				Size, Link, Row string
				Sideways        bool
			}
			Status int
			Played float64
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("studio-phone.mjs printed %s: %v", out, err)
	}
	t.Logf("studio-phone.mjs: %s", out)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 {
		t.Errorf("console errors %q", r.Errors)
	}
	if len(r.Pages) != 2 {
		t.Fatalf("%d pages looked at", len(r.Pages))
	}
	for i, p := range r.Pages {
		for _, s := range p.Sizes {
			if s.Sideways {
				t.Errorf("page %d at %s scrolls sideways", i, s.Size)
			}
			switch i {
			case 0:
				if l, err := url.Parse(s.Link); err != nil || l.Hostname() != lanHost || !strings.HasSuffix(s.Link, "/r/"+ids[0]+"/") {
					t.Errorf("open node at %s: the replay row %q links %q, want the replay at %s", s.Size, s.Row, s.Link, lanHost)
				}
			case 1:
				if s.Link != "" || !strings.Contains(s.Row, "on the computer running the node, at "+closed.HTTPURL()+"/r/"+ids[1]+"/") ||
					!strings.Contains(s.Row, "--http") {
					t.Errorf("loopback node at %s: the replay row %q links %q", s.Size, s.Row, s.Link)
				}
			}
		}
	}
	if p := r.Pages[0]; p.Status != 200 || p.Played <= 1 {
		t.Errorf("the replay link from the phone: %d, played to %.1f s", p.Status, p.Played)
	}
}
