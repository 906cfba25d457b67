package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/identity"
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
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "chat pages", Source: gated{gate, sampleSource(t)}})
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
	args := []string{"--from", viewers[0].URLs().Player, "--to", viewers[1].URLs().Player, "--text", text, "--owner", b.OwnerURL()}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	out, err := browsertest.Run(ctx, t, "chat.mjs", args...)
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
		Layout    map[string]chatLayout

		BurstHeartNodes, BurstFloated int

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
	checkChatLayout(t, r.Layout)
	// web/hearts floats every heart of a burst, spread out, with at most
	// 300 in the air.
	if r.BurstFloated < 30 || r.BurstHeartNodes == 0 || r.BurstHeartNodes > 300 {
		t.Errorf("a burst of 30 hearts: %d floated, %d in the air at once; want all 30, 1 to 300", r.BurstFloated, r.BurstHeartNodes)
	}
	if len(r.Errors) > 0 {
		t.Errorf("page errors: %q", r.Errors)
	}
}

// chatLayout is where chat.mjs found the second page's stage, the comment
// and the comment box at one screen size.
type chatLayout struct {
	Stage, Say               chatBox
	Comment                  *chatBox
	ScrollWidth, ClientWidth int
	Height                   float64
}

type chatBox struct{ L, T, R, B float64 }

// checkChatLayout: on the phone the comment lies over the video and the
// comment box is on screen; on a tablet held sideways the comment stands
// beside the video, on one held upright under it; nowhere does the page
// scroll sideways.
func checkChatLayout(t *testing.T, sizes map[string]chatLayout) {
	t.Helper()
	for _, name := range []string{"phone", "landscape", "portrait"} {
		l, ok := sizes[name]
		if !ok || l.Comment == nil {
			t.Errorf("%s: no comment found (%+v)", name, l)
			continue
		}
		s, c := l.Stage, *l.Comment
		if l.ScrollWidth > l.ClientWidth {
			t.Errorf("%s: scrolls sideways (%d > %d)", name, l.ScrollWidth, l.ClientWidth)
		}
		if name == "phone" {
			if c.L < s.L-1 || c.R > s.R+1 || c.T < s.T-1 || c.B > s.B+1 || c.T < (s.T+s.B)/2 {
				t.Errorf("phone: the comment %+v is not over the lower video %+v", c, s)
			}
			if l.Say.B > l.Height || l.Say.T < 0 {
				t.Errorf("phone: the comment box %+v is off the screen (height %v)", l.Say, l.Height)
			}
			continue
		}
		if name == "portrait" {
			// A tablet held upright: the comments fill the screen under the video.
			if c.T < s.B || l.Say.B > l.Height {
				t.Errorf("portrait: the comment %+v is not under the video %+v, or the box %+v is off the screen", c, s, l.Say)
			}
			continue
		}
		if c.L < s.R || c.T >= s.B || c.B <= s.T {
			t.Errorf("%s: the comment %+v is not beside the video %+v", name, c, s)
		}
	}
}

// TestChatOwnerPage drives the broadcaster's page and four viewers' pages
// (tests/browser/chat-owner.mjs), each viewer on its own node, one of them
// with an attestation every node trusts: handles and avatars, the viewer
// list, block, delete, followers-only, comments off and on, and a report
// judged by a juror in its page, all by clicking.
func TestChatOwnerPage(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	boot := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xb0}, ed25519.SeedSize))
	trusted := []ed25519.PublicKey{boot.Public().(ed25519.PublicKey)}

	// A's node: a key of its own in its data directory, and an
	// attestation of that key's peer signed by the trusted bootstrap key.
	dir := t.TempDir()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, node.IdentityFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	aID, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	const avatar = "https://avatars.example.com/ada.png"
	att := &identity.Attestation{Provider: "twitter", Account: "1001", Handle: "@ada", Name: "Ada Example",
		Avatar: avatar, Peer: aID, Issued: time.Now().Add(-time.Minute), Expires: time.Now().Add(time.Hour)}
	if err := att.Sign(boot); err != nil {
		t.Fatal(err)
	}

	root := newNode(t, node.Config{Slots: 4, TrustedKeys: trusted})
	gate := make(chan struct{}) // no media: the chat needs none
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "owner page", Source: gated{gate, sampleSource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	cfgs := []node.Config{
		{DataDir: dir, Attestation: att.Marshal(), TrustedKeys: trusted},
		{TrustedKeys: trusted}, {TrustedKeys: trusted}, {TrustedKeys: trusted},
	}
	var viewers []*node.Broadcast
	var ids []peer.ID
	for _, cfg := range cfgs {
		n := newNode(t, cfg)
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, w)
		ids = append(ids, n.ID())
	}
	if ids[0] != aID {
		t.Fatalf("A's node is %s, its key says %s", ids[0], aID)
	}
	waitFor(t, 30*time.Second, "every viewer in the tree", func() bool {
		for _, w := range viewers {
			if depth(t, w) < 1 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "chat-owner.mjs", "--owner", b.OwnerURL(),
		"--a", viewers[0].URLs().Player, "--b", viewers[1].URLs().Player, "--c", viewers[2].URLs().Player, "--d", viewers[3].URLs().Player,
		"--a-peer", ids[0].String(), "--b-peer", ids[1].String(), "--c-peer", ids[2].String(), "--avatar", avatar)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chat-owner.mjs: %s", out)
	type row struct {
		Who    string
		Anon   bool
		Avatar *string
	}
	var r struct {
		Error, CRefused, FollowersOnlyRefused, MutedRefused, SummonedText string
		Errors                                                            []string
		AAtB, CAtB                                                        row
		OwnerList                                                         struct {
			Identified []string
			Buttons    int
		}
		CAfterBlockShown, OthersSummoned int
		OwnerBlocked                     []string
		DeletedAtB, OffAtB, OnAtB        bool
		ViewerCounts                     []int
		Verdict                          struct {
			Guilty      bool
			For, Jurors int
		}
		JuryLog []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("chat-owner.mjs printed %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	// Who is who: A with the attestation's avatar and name, C anonymous.
	if r.AAtB.Anon || r.AAtB.Avatar == nil || *r.AAtB.Avatar != avatar || !strings.Contains(r.AAtB.Who, "Ada Example") {
		t.Errorf("A's comment at B: %+v, want Ada Example with the avatar %s", r.AAtB, avatar)
	}
	if !r.CAtB.Anon || r.CAtB.Avatar != nil || r.CAtB.Who != "anonymous" {
		t.Errorf("C's comment at B: %+v, want anonymous", r.CAtB)
	}
	if !slices.Contains(r.OwnerList.Identified, "Ada Example") || r.OwnerList.Buttons == 0 {
		t.Errorf("the owner's viewer list: %+v, want Ada Example with a block button", r.OwnerList)
	}
	// Moderation by clicking.
	if !strings.Contains(r.CRefused, "blocked") || r.CAfterBlockShown != 0 || !slices.Contains(r.OwnerBlocked, "peer:"+ids[2].String()) {
		t.Errorf("block: C refused with %q, its comment shown in %d pages, the owner's blocked list %q", r.CRefused, r.CAfterBlockShown, r.OwnerBlocked)
	}
	if !r.DeletedAtB || !r.OffAtB || !r.OnAtB {
		t.Errorf("delete at B %v, comments off at B %v, on again %v", r.DeletedAtB, r.OffAtB, r.OnAtB)
	}
	if !strings.Contains(r.FollowersOnlyRefused, "follow") {
		t.Errorf("B while followers only: refused with %q", r.FollowersOnlyRefused)
	}
	// The jury: D alone summoned, its vote mutes B.
	if !strings.Contains(r.SummonedText, "buy cheap followers here") || r.OthersSummoned != 0 {
		t.Errorf("summons in D's page %q, %d summons in the other pages", r.SummonedText, r.OthersSummoned)
	}
	if !r.Verdict.Guilty || r.Verdict.For != 1 || r.Verdict.Jurors != 1 || len(r.JuryLog) < 2 {
		t.Errorf("verdict %+v, the owner's jury log %q", r.Verdict, r.JuryLog)
	}
	if !strings.Contains(r.MutedRefused, "mute") {
		t.Errorf("B after the verdict: refused with %q", r.MutedRefused)
	}
	// Four viewers, each on its own node with its page: four watching
	// (a node's first browser is its own viewer; the owner's page is not one).
	for _, n := range r.ViewerCounts {
		if n != 4 {
			t.Errorf("the pages show %v watching, want 4", r.ViewerCounts)
			break
		}
	}
	if len(r.Errors) > 0 {
		t.Errorf("page errors: %q", r.Errors)
	}
}
