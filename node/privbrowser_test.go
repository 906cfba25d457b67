package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestPrivatePlayBrowser opens, in headless Chromium, the player page of a
// member two hops down a private broadcast of the looped clip that draws a
// new epoch every 2 s: over WHEP (the default) and over the page's LL-HLS
// reader, the video starts and plays 15 s without a stall across the
// rekeys, and nothing fails to open at the member.
func TestPrivatePlayBrowser(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	log, _ := newLogs(t, slog.LevelInfo)
	mb := &mailbox.Memory{}
	mk := func(name string, slots int) *node.Node {
		return newNode(t, node.Config{Slots: slots, Logger: log.With("node", name),
			Private: node.PrivateConfig{Mailbox: mb, Poll: 100 * time.Millisecond}})
	}
	root := mk("broadcaster", 1)
	alice, bob := mk("alice", 1), mk("bob", node.NoRelay)
	const rekey = 2 * time.Second
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "Private, 2 hops", Source: sampleSource(t, ingest.WithLoop()),
		Private: &node.Audience{Members: []node.Member{memberOf("twitter:1", alice), memberOf("twitter:2", bob)},
			RekeyEvery: rekey, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var deep *node.Broadcast // bob's
	for i, n := range []*node.Node{alice, bob} {
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("member %d in the tree", i+1), func() bool { return depth(t, w) == i+1 })
		deep = w
	}
	waitHLS(t, deep, 30*time.Second)

	for _, tc := range []struct{ name, query, mode string }{
		{"default", "", "whep"},
		{"hls", "?mode=hls", "hls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			from, before := time.Now(), status(t, deep)
			p, err := browsertest.PlayPage(ctx, t, browsertest.PlayOptions{URL: deep.URLs().Player + tc.query, Seconds: 15})
			if err != nil {
				t.Fatal(err)
			}
			after := status(t, deep)
			rekeys := epochsBetween(t, bob, b.ID(), from, time.Now()) - 1
			t.Logf("%s at depth 2: first frame at %d ms, advanced %.1f s in 15 s, %d stalls (max %d ms); %d rekeys meanwhile, the member opened %d chunks, %d did not open",
				p.Mode, p.FirstFrameMs, p.Advanced, p.Stalls, p.MaxStallMs, rekeys, after.Received-before.Received, after.Undecryptable)
			if p.Mode != tc.mode {
				t.Fatalf("the page played over %q, want %q\n%s", p.Mode, tc.mode, strings.Join(p.Log, "\n"))
			}
			// No stall; the advance may lag wall time a little where the
			// machine is loaded (the race detector: 12.5 s in 15 s, with
			// pauses under a second).
			if p.Advanced < 12 || p.Stalls > 0 {
				t.Errorf("currentTime advanced %.1f s in 15 s, %d stalls (max %d ms)\n%s", p.Advanced, p.Stalls, p.MaxStallMs, strings.Join(p.Log, "\n"))
			}
			if len(p.Errors) > 0 {
				t.Errorf("page errors: %q", p.Errors)
			}
			if rekeys < 3 {
				t.Errorf("%d rekeys while the page played", rekeys)
			}
			if after.Undecryptable != 0 {
				t.Errorf("%d chunks did not open at the member", after.Undecryptable)
			}
		})
	}
}

// epochsBetween counts the epochs of the chunks of broadcast id that n
// keeps and that were captured between from and to.
func epochsBetween(t *testing.T, n *node.Node, id string, from, to time.Time) int {
	t.Helper()
	seen := map[uint32]bool{}
	for _, h := range n.ReplayStore().Held(id) {
		c, err := n.ReplayStore().Chunk(t.Context(), h.CID)
		if err != nil {
			continue
		}
		if w := time.Unix(0, c.Wallclock); !w.Before(from) && !w.After(to) {
			seen[c.Epoch] = true
		}
	}
	return len(seen)
}
