package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestFollowingBeyondTheCap: alice's live broadcast lies behind 210
// newer ones, her scheduled one behind 205 sooner ones, so neither is in
// the public lists' first 200; bob's node, whose account follows her,
// lists both under Following, and Upcoming's search finds the scheduled
// one, because the bootstrap selects them (followed=1, q=) rather than the
// page from the first 200 (tests/browser/following.mjs, at 390x844,
// 1024x768 and 768x1024: no console error, no sideways scroll).
func TestFollowingBeyondTheCap(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	const crowd = 210
	off := bootstrap.Rate{PerSecond: -1}
	svc := startBootstrapWith(t, bootstrap.ServerConfig{MaxLiveAnonymous: -1, MaxSchedules: crowd, LiveTTL: 10 * time.Minute,
		RateIP: off, RatePeer: off, RateAccount: off})
	cfg := node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second}
	alice, bob := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	const title, next = "Harbour at noon", "Harbour at dawn"
	aliceClient := &api.Client{Base: svc.URL(), Key: alice.Host().Peerstore().PrivKey(alice.ID())}
	bobClient := &api.Client{Base: svc.URL(), Key: bob.Host().Peerstore().PrivKey(bob.ID())}
	if _, err := aliceClient.Schedule(t.Context(), api.ScheduleRequest{Title: next, Starts: time.Now().Add(26 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := bobClient.Follow(t.Context(), "twitter:100"); err != nil {
		t.Fatal(err)
	}
	live, err := alice.GoLive(t.Context(), node.LiveConfig{Title: title, Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	anyone := &api.Client{Base: svc.URL()}
	waitFor(t, 30*time.Second, "alice's broadcast in the directory under her name", func() bool {
		list, err := anyone.List(t.Context(), api.Query{Text: "harbour"})
		return err == nil && len(list) == 1 && list[0].Who != nil && list[0].Who.Handle == "@alice"
	})
	// The crowd: newer broadcasts (the newest first), sooner schedules.
	key := testKey(t, 39)
	crowdClient := &api.Client{Base: svc.URL(), Key: key}
	for i := range crowd {
		id := peerOf(t, key).String() + ".crowd" + strconv.Itoa(i)
		l := link.Link{Broadcast: id, Peers: []peer.AddrInfo{{ID: peerOf(t, key), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/9")}}}}
		if _, err := crowdClient.Announce(t.Context(), id, api.ListingUpdate{Title: "Crowd " + strconv.Itoa(i), Link: l.String(), Started: time.Now(), Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range crowd - 5 {
		if _, err := bobClient.Schedule(t.Context(), api.ScheduleRequest{Title: "Bob's hour " + strconv.Itoa(i), Starts: time.Now().Add(time.Hour + time.Duration(i)*time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	top, err := anyone.List(t.Context(), api.Query{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	soon, err := anyone.Upcoming(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 200 || slices.ContainsFunc(top, func(l *api.Listing) bool { return l.ID == live.ID() }) ||
		len(soon) != 200 || slices.ContainsFunc(soon, func(s api.Scheduled) bool { return s.Title == next }) {
		t.Fatal("alice's broadcast or schedule is in the public lists' first 200: the test cannot tell")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "following.mjs", "--viewer", bob.HTTPURL()+"/directory/", "--title", title, "--next", next, "--find", "dawn")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error  string
		Errors []string
		Sizes  []struct {
			Size                                string
			Following, Found                    []string
			UpcomingShown                       int
			FollowingSideways, UpcomingSideways bool
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
		if !slices.Equal(s.Following, []string{title, next}) || !slices.Equal(s.Found, []string{next}) || s.UpcomingShown != 200 ||
			s.FollowingSideways || s.UpcomingSideways {
			t.Errorf("%s: %+v", s.Size, s)
		}
	}
}

// testKey is the ed25519 key of seed (the same every run).
func testKey(t *testing.T, seed byte) crypto.PrivKey {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func peerOf(t *testing.T, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
