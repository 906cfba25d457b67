package node_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestProfilePage drives profiles and the directory home through bob's
// node's directory page in Chromium (tests/browser/profile.mjs) at a
// phone's size and both tablets': the search finds alice's live broadcast
// by a word of its title among others (an overlong search is refused with
// its message); alice's name opens her profile, which says she signed in
// with X and lists the broadcast and the one she has scheduled; Follow
// raises her followers by one, and the Following tab lists both; Unfollow
// takes the count back. An anonymous broadcaster's name opens their
// broadcasts, with nothing to follow. The lists are a grid on tablets, one
// column on the phone. On the bootstrap's own page her profile's Follow,
// and the Following tab, say where to sign in. No console error, no
// sideways scroll. PEERSCOPE_SHOTS=DIR keeps the directory and the profile
// at each size.
func TestProfilePage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	// The test clicks through three sizes faster than a person: some 50
	// signed requests from bob's node in ten seconds (each page's identity
	// and feed, the profile's follows, Following's three), past the
	// default 5/s per peer (burst 20) once the bucket has drained; the
	// account's own limit (10/s, burst 40) still holds.
	svc := startBootstrapWith(t, bootstrap.ServerConfig{RatePeer: bootstrap.Rate{PerSecond: 10, Burst: 40}})
	cfg := node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second}
	alice, bob := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	const title, next = "Harbour at noon", "Harbour at dawn"
	aliceClient := &api.Client{Base: svc.URL(), Key: alice.Host().Peerstore().PrivKey(alice.ID())}
	if _, err := aliceClient.Schedule(t.Context(), api.ScheduleRequest{Title: next, Starts: time.Now().Add(26 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	live, err := alice.GoLive(t.Context(), node.LiveConfig{Title: title, Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// Others live beside her, anonymous: the lists have more than one
	// entry (and a search something to leave out).
	for i, title := range []string{"Street market in Lisbon", "Morning run by the river", "Jazz rehearsal"} {
		announceAt(t, svc.URL(), byte(40+i), title, nil)
	}
	anyone := &api.Client{Base: svc.URL()}
	waitFor(t, 30*time.Second, "alice's broadcast in the directory under her name", func() bool {
		list, err := anyone.List(t.Context(), api.Query{Text: "harbour"})
		return err == nil && len(list) == 1 && list[0].Who != nil && list[0].Who.Handle == "@alice"
	})

	args := []string{"--viewer", bob.HTTPURL() + "/directory/", "--bootstrap", svc.URL(), "--title", title}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "profile.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error  string
		Errors []string
		Sizes  []struct {
			Size, Overlong, URL, Name, Source, Live, Upcoming, Button, Unfollowed, BootstrapFollow, BootstrapFollowing string
			Found, Following                                                                                           []string
			FollowersBefore, FollowersAfter, Columns                                                                   int
			FoundLive                                                                                                  bool
			Sideways                                                                                                   map[string]bool
			Anonymous                                                                                                  *struct {
				Name, Source, Live string
				Follow, Counts     bool
			}
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%+v", r)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 {
		t.Errorf("console errors %q", r.Errors)
	}
	if len(r.Sizes) != 3 {
		t.Fatalf("%d sizes looked at", len(r.Sizes))
	}
	for _, s := range r.Sizes {
		for page, side := range s.Sideways {
			if side {
				t.Errorf("%s: %s scrolls sideways", s.Size, page)
			}
		}
		if !slices.Equal(s.Found, []string{title}) || !s.FoundLive || !strings.Contains(s.Overlong, "at most 100 characters") {
			t.Errorf("%s: search found %q; an overlong one said %q", s.Size, s.Found, s.Overlong)
		}
		if a := s.Anonymous; s.Size == "phone" && (a == nil || a.Name != "Anonymous broadcaster" || !strings.Contains(a.Source, "Anonymous") ||
			!strings.Contains(a.Live, "Jazz rehearsal") || a.Follow || a.Counts) {
			t.Errorf("an anonymous broadcaster's profile: %+v", a)
		}
		if wantGrid := s.Size != "phone"; (s.Columns > 1) != wantGrid {
			t.Errorf("%s: %d columns", s.Size, s.Columns)
		}
		if !strings.Contains(s.URL, "?u=twitter%3A100") || !strings.Contains(s.Name, "Alice") ||
			!strings.Contains(s.Source, "X (Twitter)") || !strings.Contains(s.Live, title) || !strings.Contains(s.Upcoming, next) {
			t.Errorf("%s: profile at %s: %q, %q, live %q, upcoming %q", s.Size, s.URL, s.Name, s.Source, s.Live, s.Upcoming)
		}
		if s.FollowersAfter != s.FollowersBefore+1 || s.Button != "Following" || s.Unfollowed != "Follow" {
			t.Errorf("%s: followers %d then %d, button %q, after unfollowing %q", s.Size, s.FollowersBefore, s.FollowersAfter, s.Button, s.Unfollowed)
		}
		if !slices.Contains(s.Following, title) || !slices.Contains(s.Following, next) {
			t.Errorf("%s: Following lists %q", s.Size, s.Following)
		}
		if !strings.Contains(s.BootstrapFollow, "sign in on your Peerscope node") || !strings.Contains(s.BootstrapFollowing, "sign in on your Peerscope node") {
			t.Errorf("%s: the bootstrap's Follow said %q, its Following %q", s.Size, s.BootstrapFollow, s.BootstrapFollowing)
		}
	}
	// Unfollowed at the end: nobody follows alice.
	p, err := anyone.Profile(t.Context(), "@alice")
	if err != nil || p.Followers != 0 {
		t.Errorf("alice's profile after: %+v %v", p, err)
	}
}
