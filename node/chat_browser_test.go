package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// TestChatPages opens two viewers' player pages, on two nodes under a
// broadcaster, in headless Chromium: a comment typed in one page appears in
// the other's feed, by an anonymous author, and hearts tapped in one float
// in the other; the broadcaster's page, opened with the owner token, has
// moderation, and turning comments off there closes the viewer's box.
func TestChatPages(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	root := newNode(t, node.Config{Slots: 2})
	gate := make(chan struct{}) // no media: the chat needs none
	b, err := root.Broadcast(t.Context(), node.BroadcastConfig{Title: "chat pages", Source: gated{gate, sampleSource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	var viewers []*node.Broadcast
	for range 2 {
		w, err := newNode(t, node.Config{}).Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, w)
	}
	waitFor(t, 30*time.Second, "both viewers in the tree", func() bool {
		return depth(t, viewers[0]) >= 1 && depth(t, viewers[1]) >= 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	const text = "hello from the other page ♥"
	out, err := browsertest.Run(ctx, t, "chat.mjs", "--from", viewers[0].PlayerURL(), "--to", viewers[1].PlayerURL(), "--text", text, "--owner", b.OwnerURL())
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error     string
		Errors    []string
		CommentMs int
		Author    struct{ Anonymous bool }
		FloatedTo int
		FeedTo    []string
		Viewers   string

		OwnerModButtons, FromModButtons int
		OffAtViewer                     bool
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("chat.mjs printed %s: %v", out, err)
	}
	t.Logf("chat.mjs: %s", out)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if !slices.Contains(r.FeedTo, text) || !r.Author.Anonymous || r.FloatedTo == 0 {
		t.Fatalf("the other page: feed %q, anonymous author %v, %d hearts floated", r.FeedTo, r.Author.Anonymous, r.FloatedTo)
	}
	if r.OwnerModButtons == 0 || r.FromModButtons != 0 || !r.OffAtViewer {
		t.Fatalf("moderation: %d buttons on the owner's page, %d on a viewer's, comments off at the viewer %v",
			r.OwnerModButtons, r.FromModButtons, r.OffAtViewer)
	}
	if len(r.Errors) > 0 {
		t.Errorf("page errors: %q", r.Errors)
	}
}
