package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestPlayerPage drives a viewer's player page in Chromium
// (tests/browser/player.mjs) at 390x844, 1024x768 and 768x1024, as a
// person would: Alice (signed in with Twitter at a real bootstrap) is
// live; Bob, signed in too, watches on his node and opens its page; Carol,
// signed in, watches on hers and sends hearts. Bob's page names Alice and
// where her identity comes from, follows and unfollows her (the bootstrap
// agrees each time), shares the web link and the peerscope:// link, lists
// Carol's face behind the viewer count, and floats Carol's hearts. On the
// phone the comments lie over the lower video; on the tablets beside it
// (landscape) or under it (portrait), with little screen left empty. No
// console error, no sideways scroll. PEERSCOPE_SHOTS=DIR keeps a
// screenshot at each size.
func TestPlayerPage(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 3, DirectoryInterval: time.Second}
	alice, bob, carol, dave := newNode(t, cfg), newNode(t, cfg), newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	signIn(t, carol, "300")
	b, err := alice.GoLive(t.Context(), node.LiveConfig{Title: "Harbour at dusk", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	var atBob, atCarol, atDave *node.Broadcast // Dave never signs in
	for _, w := range []struct {
		n  *node.Node
		to **node.Broadcast
	}{{bob, &atBob}, {carol, &atCarol}, {dave, &atDave}} {
		if *w.to, err = w.n.Watch(t.Context(), b.Link()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "both viewers in the tree", func() bool {
		return depth(t, atBob) >= 1 && depth(t, atCarol) >= 1
	})
	waitFor(t, 30*time.Second, "a comment from Carol", func() bool {
		code, _ := postChat(t, atCarol.URLs().Player+"chat/comment", "", map[string]string{"text": "the light on the water!"})
		return code == 200
	})
	for _, c := range []struct {
		at   *node.Broadcast
		text string
	}{{atBob, "hello from Lisbon"}, {b, "thanks for coming, the boats are back in a minute"}, {atCarol, "❤️ ❤️"}} {
		if code, body := postChat(t, c.at.URLs().Player+"chat/comment", "", map[string]string{"text": c.text}); code != 200 {
			t.Fatalf("comment %q: %d %s", c.text, code, body)
		}
	}
	// Carol taps hearts all along (Bob's page must float them untouched).
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			heart(ctx, atCarol.URLs().Player+"chat/heart", carol.APIToken())
			select {
			case <-ctx.Done():
			case <-time.After(700 * time.Millisecond):
			}
		}
	}()

	web := svc.URL() + "/w/" + b.ID() + "/"
	args := []string{"--url", atBob.URLs().Player, "--name", "Alice", "--viewer", "Carol",
		"--signed-out", atDave.URLs().Player, "--weblink", web, "--own", b.URLs().Player}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	out, err := browsertest.Run(ctx, t, "player.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("player.mjs: %s", out)
	type box struct{ L, T, R, B float64 }
	type size struct {
		Who                               struct{ Name, Handle, Source, Face, Label, Profile string }
		FollowLabel, Followed, Unfollowed string
		FollowNotes                       []string
		Share                             struct {
			Web, P2P string
			Labels   []string
		}
		CopyButton, Clipboard      string
		ShareInView                bool
		Faces                      []string
		Anonymous, CountLabel      string
		Floated                    int
		Strip                      []string
		Stage, Video, Comment, Say box
		Side, Top                  box
		Width, Height              float64
		Sideways, Playing          bool
		Shown, Covered             float64 // the picture on screen, the share of it comments cover
		Labels                     int
		FocusOutline               string
	}
	type elsewhere struct {
		Note, Link, Pressed, Source string
		Share                       struct{ Web, P2P string }
		Sideways                    bool
	}
	var r struct {
		Error              string
		Errors             []string
		Sizes              map[string]size
		SignedOut, Weblink elsewhere
		Own                struct{ FollowHidden bool }
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("player.mjs printed %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	for _, name := range []string{"phone", "phone-landscape", "tablet-landscape", "tablet-portrait"} {
		s, ok := r.Sizes[name]
		if !ok {
			t.Errorf("%s: not looked at", name)
			continue
		}
		if s.Who.Profile != "/directory/u/twitter%3A100" {
			t.Errorf("%s: the name links to %q, not alice's profile", name, s.Who.Profile)
		}
		if s.Who.Name != "Alice" || s.Who.Handle != "@alice" || s.Who.Source != "via Twitter" || s.Who.Face != "AL" ||
			!strings.Contains(s.Who.Label, "Alice") {
			t.Errorf("%s: who broadcasts: %+v, want Alice @alice via Twitter", name, s.Who)
		}
		if s.FollowLabel != "Follow Alice" || s.Followed != "Following" || s.Unfollowed != "Follow" || len(s.FollowNotes) > 0 {
			t.Errorf("%s: follow %q → %q → %q, notes %q", name, s.FollowLabel, s.Followed, s.Unfollowed, s.FollowNotes)
		}
		if s.Share.Web != web || !strings.HasPrefix(s.Share.P2P, "peerscope://"+b.ID()+"?") || len(s.Share.Labels) != 2 {
			t.Errorf("%s: share %+v, want %s and the peerscope:// link", name, s.Share, web)
		}
		if s.CopyButton != "Copied" || s.Clipboard != web || !s.ShareInView {
			t.Errorf("%s: copy: button %q, clipboard %q, sheet on screen %v", name, s.CopyButton, s.Clipboard, s.ShareInView)
		}
		if !strings.Contains(strings.Join(s.Faces, "|"), "Carol@carol") || !strings.Contains(s.CountLabel, "watching") {
			t.Errorf("%s: viewers %q (%q), count %q", name, s.Faces, s.Anonymous, s.CountLabel)
		}
		if strip := strings.Join(s.Strip, "|"); strings.HasPrefix(name, "phone") != !strings.Contains(strip, "Carol") {
			t.Errorf("%s: the strip of faces shows %q (beside the video only, with Carol)", name, s.Strip)
		}
		if s.Floated == 0 {
			t.Errorf("%s: Carol's hearts did not float", name)
		}
		if s.Sideways {
			t.Errorf("%s: scrolls sideways", name)
		}
		if s.Labels != 0 {
			t.Errorf("%s: %d buttons without a label", name, s.Labels)
		}
		if !strings.HasSuffix(s.FocusOutline, "solid 2px") {
			t.Errorf("%s: focus ring %q", name, s.FocusOutline)
		}
		// The whole picture on screen, and no comment over it.
		if s.Shown < 0.98 || s.Covered > 0 {
			t.Errorf("%s: %.0f%% of the picture on screen, %.0f%% of it under comments", name, 100*s.Shown, 100*s.Covered)
		}
		st, c, say := s.Stage, s.Comment, s.Say
		switch name {
		case "phone":
			// The video fills the screen; the comment over its lower part,
			// the box on screen.
			if st.L > 0 || st.T > 0 || st.R < s.Width || st.B < s.Height {
				t.Errorf("phone: the stage %+v does not fill the %vx%v screen", st, s.Width, s.Height)
			}
			if c.T < s.Height/2 || c.B > say.T || say.B > s.Height {
				t.Errorf("phone: the comment %+v is not over the lower video above the box %+v", c, say)
			}
		case "phone-landscape":
			// Too short for comments over the video: beside it, the box on
			// screen.
			if c.L < st.R || st.B < s.Height-1 || s.Side.B < s.Height-1 || say.B > s.Height || say.L < st.R {
				t.Errorf("phone landscape: the comment %+v not beside the full-height video %+v (side %+v, box %+v)", c, st, s.Side, say)
			}
		case "tablet-landscape":
			if c.L < st.R || st.B < s.Height-1 || s.Side.B < s.Height-1 || say.B > s.Height {
				t.Errorf("tablet landscape: the comment %+v not beside the full-height video %+v (side %+v, box %+v)", c, st, s.Side, say)
			}
		case "tablet-portrait":
			if c.T < st.B || s.Side.T > st.B+1 || s.Side.B < s.Height-1 || say.B > s.Height {
				t.Errorf("tablet portrait: the comment %+v not under the video %+v, the side %+v filling the rest", c, st, s.Side)
			}
		}
	}
	// Where Follow cannot work, a tap says how to make it work.
	if so := r.SignedOut; !strings.Contains(so.Note, "Sign in on your directory") || so.Link != dave.HTTPURL()+"/directory/" ||
		so.Pressed != "false" || so.Share.Web != web || so.Sideways {
		t.Errorf("Dave's page (not signed in): %+v", so)
	}
	if wl := r.Weblink; !strings.Contains(wl.Note, "sign in") || wl.Pressed != "false" || wl.Source != "via Twitter" ||
		wl.Share.Web != web || !strings.HasPrefix(wl.Share.P2P, "peerscope://"+b.ID()+"?") || wl.Sideways {
		t.Errorf("the web link: %+v", wl)
	}
	if !r.Own.FollowHidden {
		t.Error("Alice's own page offers to follow Alice")
	}
	if len(r.Errors) > 0 {
		t.Errorf("page errors: %q", r.Errors)
	}
	// The last unfollow stands at the bootstrap.
	var f struct{ Following []string }
	if err := json.Unmarshal(getAsOwner(t, bob, "/directory/api/node/follows"), &f); err != nil || len(f.Following) != 0 {
		t.Errorf("Bob's follows after the page: %+v %v", f, err)
	}
}

// heart taps two hearts through a node's chat API, as its page does (with
// its page token), from a goroutine: a failure is the next tap's to retry.
func heart(ctx context.Context, url, token string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"n":2}`))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Peerscope-Token", token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}
