package bootstrap_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

func (n *node) broadcastID(nonce string) string { return n.id.String() + "." + nonce }

func announcement(id, title string, started time.Time, version uint64) api.ListingUpdate {
	broadcaster, _, _ := strings.Cut(id, ".")
	return api.ListingUpdate{Title: title, Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + broadcaster, Started: started, Version: version}
}

// signIn signs n in with the stand-in as the given user, as a node and
// the browser on its machine do: the node starts with its page's loopback
// URL to come back to; the browser signs in at X, is sent back there with
// the one-time code in the fragment; the node redeems it.
func (e *env) signIn(n *node, user string, scopes ...string) api.AttestationResponse {
	e.t.Helper()
	ctx := context.Background()
	const page = "http://127.0.0.1:8080/directory/"
	start, err := n.c.TwitterStart(ctx, page, scopes...)
	if err != nil {
		e.t.Fatal(err)
	}
	b := stopAtCallback(e.t)
	resp, _ := get(e.t, b, start.AuthorizeURL+"&login="+user) // X sends the browser to the callback
	resp, body := get(e.t, b, resp.Header.Get("Location"))    // the callback sends it to the node's page
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), page+"#signin=") {
		e.t.Fatalf("sign-in as %s: %d to %q: %s", user, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	res, err := n.c.TwitterFinish(ctx, strings.TrimPrefix(loc.Fragment, "signin="))
	if err != nil {
		e.t.Fatalf("sign-in as %s: %v", user, err)
	}
	return res
}

func ids(list []*api.Listing) []string {
	var out []string
	for _, b := range list {
		out = append(out, b.ID)
	}
	return out
}

// TestDirectory: announce, update, search, end, replay for 24 h; only the
// broadcaster may announce; stale versions are refused.
func TestDirectory(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		e.signIn(alice, "100")
		t0 := e.clock.Now()
		a1, b1 := alice.broadcastID("aaaa"), bob.broadcastID("bbbb")
		if _, err := alice.c.Announce(ctx, a1, announcement(a1, "Sunrise over the bay", t0, 1)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		if _, err := bob.c.Announce(ctx, b1, announcement(b1, "Cooking pasta", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		live, err := alice.c.List(ctx, api.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(live); !slices.Equal(got, []string{b1, a1}) {
			t.Fatalf("live %v, want newest first", got)
		}
		if live[1].Who == nil || live[1].Who.Handle != "@alice" || live[0].Who != nil {
			t.Fatalf("identities: %+v / %+v", live[1].Who, live[0].Who)
		}
		for q, want := range map[string][]string{"sunrise": {a1}, "PASTA": {b1}, "@ali": {a1}, "nothing": nil, "50%": nil} {
			got, err := alice.c.List(ctx, api.Query{Text: q})
			if err != nil || !slices.Equal(ids(got), want) {
				t.Errorf("search %q: %v %v, want %v", q, ids(got), err, want)
			}
		}

		// Only the broadcaster announces its broadcast; versions only grow.
		_, err = bob.c.Announce(ctx, a1, announcement(a1, "hijacked", t0, 9))
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		up := announcement(a1, "Sunrise over the bay", t0, 2)
		up.Viewers = 42
		if _, err := alice.c.Announce(ctx, a1, up); err != nil {
			t.Fatal(err)
		}
		_, err = alice.c.Announce(ctx, a1, announcement(a1, "old", t0, 2))
		mustStatus(t, err, http.StatusConflict, "stale")
		// A change of viewer counts alone may show up to a second late (the
		// listing cache); a new title or an end shows at once.
		e.clock.Advance(time.Second)
		got, _ := alice.c.List(ctx, api.Query{Text: "sunrise"})
		if len(got) != 1 || got[0].Viewers != 42 || got[0].Title != "Sunrise over the bay" {
			t.Fatalf("after update: %+v", got)
		}

		// A broadcast whose node stopped updating drops out of the live list.
		e.clock.Advance(bootstrap.DefaultLiveTTL - time.Second)
		up.Version, up.Viewers = 3, 40
		if _, err := alice.c.Announce(ctx, a1, up); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Second)
		live, _ = alice.c.List(ctx, api.Query{})
		if !slices.Equal(ids(live), []string{a1}) {
			t.Fatalf("live after bob's node went quiet: %v", ids(live))
		}

		// The end, then the replay, listed 24 h after the end.
		_, err = alice.c.PublishReplay(ctx, a1, "bafy-manifest")
		mustStatus(t, err, http.StatusConflict, "stale") // not ended yet
		end := announcement(a1, "Sunrise over the bay", t0, 4)
		end.Ended = e.clock.Now()
		if _, err := alice.c.Announce(ctx, a1, end); err != nil {
			t.Fatal(err)
		}
		relive := announcement(a1, "again", t0, 5)
		_, err = alice.c.Announce(ctx, a1, relive)
		mustStatus(t, err, http.StatusConflict, "stale")
		live, _ = alice.c.List(ctx, api.Query{})
		if len(live) != 0 {
			t.Fatalf("ended broadcast still live: %v", ids(live))
		}
		_, err = bob.c.PublishReplay(ctx, a1, "bafy-manifest")
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		if _, err := alice.c.PublishReplay(ctx, a1, "bafy-manifest"); err != nil {
			t.Fatal(err)
		}
		replays, _ := alice.c.List(ctx, api.Query{Replays: true})
		if !slices.Equal(ids(replays), []string{a1}) || replays[0].Replay != "bafy-manifest" || !replays[0].ReplayExpires.Equal(end.Ended.Add(24*time.Hour)) {
			t.Fatalf("replays %+v", replays)
		}
		e.clock.Advance(24*time.Hour - time.Second)
		if replays, _ = alice.c.List(ctx, api.Query{Replays: true}); len(replays) != 1 {
			t.Fatal("replay gone before 24 h")
		}
		e.clock.Advance(time.Second)
		if replays, _ = alice.c.List(ctx, api.Query{Replays: true}); len(replays) != 0 {
			t.Fatalf("replay listed 24 h after the end: %v", ids(replays))
		}

		// The page is served at the root.
		if resp, page := get(t, http.DefaultClient, e.url+"/"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "directory.js") {
			t.Fatalf("directory page: %d", resp.StatusCode)
		}
		if resp, _ := get(t, http.DefaultClient, e.url+"/watch/"+a1); resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "watch="+url.QueryEscape(a1) {
			t.Fatalf("shared link: %d %s", resp.StatusCode, resp.Request.URL)
		}

		// Private broadcasts are not listed.
		p1 := bob.broadcastID("priv")
		pa := announcement(p1, "family only", e.clock.Now(), 1)
		pa.Private = true
		if _, err := bob.c.Announce(ctx, p1, pa); err != nil {
			t.Fatal(err)
		}
		if live, _ = alice.c.List(ctx, api.Query{}); len(live) != 0 {
			t.Fatalf("private broadcast listed: %v", ids(live))
		}
	})
}

// sse reads server-sent events from a stream.
type sse struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openSSE(t *testing.T, req *http.Request) *sse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %d", resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sse{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event (kind and decoded data).
func (s *sse) next(t *testing.T) bootstrap.Event {
	t.Helper()
	var ev bootstrap.Event
	for s.sc.Scan() {
		line := s.sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			return ev
		}
	}
	t.Fatalf("event stream ended: %v", s.sc.Err())
	return ev
}

// TestFollowNotify: carol follows alice; when alice goes live, carol's
// feed hears it, the public stream too, and the pubsub hook gets carol as a
// follower to notify; alice opted in to a tweet, which the stand-in
// received.
func TestFollowNotify(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, carol, dave := e.node(1), e.node(3), e.node(4)
		e.signIn(alice, "100", api.ScopeTweet)
		e.x.AddUser(xUser("300", "carol"))
		e.x.AddUser(xUser("400", "dave"))
		e.signIn(carol, "300")
		e.signIn(dave, "400")

		// Following needs a session, a valid key, not oneself.
		anon := e.node(9)
		mustStatus(t, anon.c.Follow(ctx, "twitter:100"), http.StatusForbidden, "not_signed_in")
		mustStatus(t, carol.c.Follow(ctx, "twitter:300"), http.StatusBadRequest, "bad_request")
		mustStatus(t, carol.c.Follow(ctx, "no-colon"), http.StatusBadRequest, "bad_request")
		if err := carol.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if err := carol.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err) // idempotent
		}
		if err := dave.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if err := dave.c.Unfollow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if f, _ := carol.c.Following(ctx); !slices.Equal(f, []string{"twitter:100"}) {
			t.Fatalf("carol follows %v", f)
		}
		if f, _ := dave.c.Following(ctx); len(f) != 0 {
			t.Fatalf("dave follows %v after unfollowing", f)
		}

		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/feed", nil)
		if err := api.SignRequest(req, nil, carol.key, e.svc.Keys.ID(), e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		carolFeed := openSSE(t, req)
		req, _ = http.NewRequest(http.MethodGet, e.url+"/api/v1/feed", nil)
		_ = api.SignRequest(req, nil, dave.key, e.svc.Keys.ID(), e.clock.Now())
		daveFeed := openSSE(t, req)
		pubReq, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/events", nil)
		public := openSSE(t, pubReq)

		id := alice.broadcastID("live")
		a := announcement(id, "Going live", e.clock.Now(), 1)
		a.Tweet = true
		res, err := alice.c.Announce(ctx, id, a)
		if err != nil {
			t.Fatal(err)
		}
		if ev := carolFeed.next(t); ev.Kind != bootstrap.EventLive || ev.Listing.ID != id {
			t.Fatalf("carol's feed: %+v", ev)
		}
		if ev := public.next(t); ev.Kind != bootstrap.EventLive || ev.Listing.ID != id || ev.Listing.Who.Handle != "@alice" {
			t.Fatalf("public stream: %+v", ev)
		}
		select {
		case ev := <-e.live:
			if !slices.Equal(ev.Followers, []string{"twitter:300"}) {
				t.Fatalf("pubsub hook: followers %v", ev.Followers)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the pubsub hook heard nothing")
		}
		tweets := e.x.Tweets()
		if res.Tweeted == "" || len(tweets) != 1 || tweets[0].Author != "100" || !strings.Contains(tweets[0].Text, "Going live") || !strings.Contains(tweets[0].Text, "/watch/"+id) {
			t.Fatalf("tweet %q, tweets %+v", res.Tweeted, tweets)
		}
		// An update is not a second go-live: no second tweet, nothing in feeds.
		a.Version, a.Viewers = 2, 5
		if _, err := alice.c.Announce(ctx, id, a); err != nil {
			t.Fatal(err)
		}
		if ev := public.next(t); ev.Kind != bootstrap.EventUpdate || ev.Listing.Viewers != 5 {
			t.Fatalf("public stream: %+v", ev)
		}
		if len(e.x.Tweets()) != 1 {
			t.Fatal("tweeted twice")
		}
		// Bob's go-live (nobody follows bob) reaches the public stream only;
		// then a go-live of alice's again reaches carol, not dave.
		bob := e.node(2)
		e.signIn(bob, "200")
		bid := bob.broadcastID("bob")
		if _, err := bob.c.Announce(ctx, bid, announcement(bid, "bob's", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if ev := public.next(t); ev.Listing.ID != bid {
			t.Fatalf("public: %+v", ev)
		}
		id2 := alice.broadcastID("second")
		if _, err := alice.c.Announce(ctx, id2, announcement(id2, "second", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if ev := carolFeed.next(t); ev.Listing.ID != id2 {
			t.Fatalf("carol's feed skipped to %+v", ev)
		}
		// Dave's feed got nothing: the next thing it sees is the stream's end
		// when the server closes, checked by reading with the server closed.
		e.svc.Server.Close()
		for daveFeed.sc.Scan() {
			if strings.HasPrefix(daveFeed.sc.Text(), "data:") {
				t.Fatalf("dave's feed got %q", daveFeed.sc.Text())
			}
		}
	})
}

// TestTweetAfterTokenExpiry: X's access tokens live 2 hours; a broadcaster
// who signed in earlier than that still gets the opt-in tweet, because the
// bootstrap refreshes the token (and keeps the new refresh token, since
// X's are single use).
func TestTweetAfterTokenExpiry(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice := e.node(1)
		e.signIn(alice, "100", api.ScopeTweet)
		for i, nonce := range []string{"first", "second", "third"} {
			e.clock.Advance(3 * time.Hour) // past the access token's life
			id := alice.broadcastID(nonce)
			a := announcement(id, "day "+nonce, e.clock.Now(), 1)
			a.Tweet = true
			res, err := alice.c.Announce(ctx, id, a)
			if err != nil {
				t.Fatal(err)
			}
			if res.Tweeted == "" || len(e.x.Tweets()) != i+1 {
				t.Fatalf("go-live %d, %s after sign-in: no tweet (%d tweets)", i+1, 3*time.Duration(i+1)*time.Hour, len(e.x.Tweets()))
			}
		}
	})
}
