package community_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/internal/clock"
)

// TestFollowThroughHandler: the player's Follow, as HTTP through the
// node's handler against a real bootstrap. Not signed in, the node says
// so (the list) and refuses a follow with where to sign in; signed in by
// phone, it follows and unfollows the broadcaster, whose listing names
// them (Broadcaster), and the list shows each change; the Following tab's
// route lists the followed broadcaster's live broadcast (as the bootstrap
// selects it, followed=1), and nothing once unfollowed. A bad account key
// or an overlong search is refused and changes nothing.
func TestFollowThroughHandler(t *testing.T) {
	sms := &texts{}
	svc := startBootstrap(t, sms)

	// The broadcaster: signed in by phone, a live listing.
	bkey, bself := newKey(t)
	caster := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: bkey, Node: &fakeNode{}, ListingInterval: 50 * time.Millisecond})
	casterSrv := httptest.NewServer(caster.Handler())
	defer casterSrv.Close()
	signUpByPhone(t, sms, casterSrv.URL, "+15550111")
	id := bself.String() + ".follow1"
	ended := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		caster.ListLive(t.Context(), community.Live{ID: id, Ended: ended, Entry: func() api.ListingUpdate {
			return api.ListingUpdate{Title: "Follow me", Link: linkOf(id, bself), Started: time.Now().Add(-time.Minute)}
		}})
	}()
	defer func() { close(ended); <-done }()

	// The viewer's node.
	key, _ := newKey(t)
	c := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: key, Node: &fakeNode{}})
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	var who *api.Account
	waitFor(t, "the broadcaster named by its listing", func() bool {
		w, listed := c.Broadcaster(id)
		who = w
		return listed && w != nil && w.Provider == "phone" && strings.HasPrefix(w.Handle, "+1•••0111·")
	})
	if w, listed := c.Broadcaster(bself.String() + ".nothere"); w != nil || listed {
		t.Fatalf("a broadcast nobody listed: %+v listed %v", w, listed)
	}

	type follows struct {
		SignedIn  bool     `json:"signed_in"`
		Account   string   `json:"account"`
		Following []string `json:"following"`
	}
	list := func() follows {
		t.Helper()
		var f follows
		if err := json.Unmarshal([]byte(get(t, srv.URL+"/directory/api/node/follows")), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := list(); f.SignedIn || len(f.Following) != 0 {
		t.Fatalf("not signed in: %+v", f)
	}
	type following struct {
		SignedIn bool           `json:"signed_in"`
		Live     []*api.Listing `json:"live"`
	}
	tab := func(q string) following {
		t.Helper()
		var f following
		if err := json.Unmarshal([]byte(get(t, srv.URL+"/directory/api/node/following?q="+q)), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := tab(""); f.SignedIn || len(f.Live) != 0 {
		t.Fatalf("the Following tab, not signed in: %+v", f)
	}
	body := `{"account":"` + who.Key() + `","follow":true}`
	if code, out := post(t, srv.URL+"/directory/api/node/follow", body); code != http.StatusForbidden || !strings.Contains(out, "sign in") {
		t.Fatalf("a follow before signing in: %d %s", code, out)
	}

	signUpByPhone(t, sms, srv.URL, "+15550122")
	for _, bad := range []string{`{"account":"nobody","follow":true}`, `{"account":"twitter:","follow":true}`, `{"account":"x:1","follow":true,"more":1}`} {
		if code, out := post(t, srv.URL+"/directory/api/node/follow", bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad, code, out)
		}
	}
	if f := list(); !f.SignedIn || len(f.Following) != 0 || !strings.HasPrefix(f.Account, "phone:") || f.Account == who.Key() {
		t.Fatalf("signed in, after bad follows: %+v", f)
	}
	if code, out := post(t, srv.URL+"/directory/api/node/follow", body); code != http.StatusOK || !strings.Contains(out, `"following":true`) {
		t.Fatalf("follow: %d %s", code, out)
	}
	if f := list(); !slices.Contains(f.Following, who.Key()) {
		t.Fatalf("after following %s: %+v", who.Key(), f)
	}
	if f := tab("follow"); !f.SignedIn || len(f.Live) != 1 || f.Live[0].ID != id {
		t.Fatalf("the Following tab, searched: %+v", f)
	}
	if f := tab("nothing+like+it"); !f.SignedIn || len(f.Live) != 0 {
		t.Fatalf("the Following tab, searched for nothing: %+v", f)
	}
	resp, err := http.Get(srv.URL + "/directory/api/node/following?q=" + strings.Repeat("x", 101))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an overlong search: %s, want 400", resp.Status)
	}
	if code, out := post(t, srv.URL+"/directory/api/node/follow", `{"account":"`+who.Key()+`","follow":false}`); code != http.StatusOK || !strings.Contains(out, `"following":false`) {
		t.Fatalf("unfollow: %d %s", code, out)
	}
	if f := list(); !f.SignedIn || slices.Contains(f.Following, who.Key()) {
		t.Fatalf("after unfollowing: %+v", f)
	}
	if f := tab(""); !f.SignedIn || len(f.Live) != 0 {
		t.Fatalf("the Following tab after unfollowing: %+v", f)
	}
}

// signUpByPhone signs the node behind base up with phone, as its page does.
func signUpByPhone(t *testing.T, sms *texts, base, phone string) {
	t.Helper()
	if code, body := post(t, base+"/directory/api/node/phone/start", `{"phone":"`+phone+`"}`); code != http.StatusOK {
		t.Fatalf("phone start: %d %s", code, body)
	}
	if code, body := post(t, base+"/directory/api/node/phone/verify", `{"phone":"`+phone+`","code":"`+sms.code(phone)+`"}`); code != http.StatusOK {
		t.Fatalf("phone verify: %d %s", code, body)
	}
}

// TestBroadcasterLearnsLateListing: a player opened before the
// broadcaster's listing reaches the bootstrap is told "not listed"; once
// the listing is there it learns who broadcasts within seconds, not after
// the 30 s a known listing is kept.
func TestBroadcasterLearnsLateListing(t *testing.T) {
	sms := &texts{}
	svc := startBootstrap(t, sms)
	clk := clock.NewFake(time.Now())
	key, _ := newKey(t)
	c := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: key, Node: &fakeNode{}, Clock: clk})

	bkey, bself := newKey(t)
	id := bself.String() + ".late1"
	if w, listed := c.Broadcaster(id); w != nil || listed {
		t.Fatalf("before any listing: %+v listed %v", w, listed)
	}
	waitFor(t, "the first read's answer", func() bool { return !c.ListingReadAt(id).IsZero() })
	if w, listed := c.Broadcaster(id); w != nil || listed {
		t.Fatalf("the first read: %+v listed %v", w, listed)
	}

	caster := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: bkey, Node: &fakeNode{}, ListingInterval: 50 * time.Millisecond})
	casterSrv := httptest.NewServer(caster.Handler())
	defer casterSrv.Close()
	signUpByPhone(t, sms, casterSrv.URL, "+15550133")
	ended := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		caster.ListLive(t.Context(), community.Live{ID: id, Ended: ended, Entry: func() api.ListingUpdate {
			return api.ListingUpdate{Title: "Late", Link: linkOf(id, bself), Started: time.Now()}
		}})
	}()
	defer func() { close(ended); <-done }()
	reader := &api.Client{Base: svc.URL()}
	waitFor(t, "the listing at the bootstrap", func() bool {
		_, err := reader.Broadcast(t.Context(), id)
		return err == nil
	})

	clk.Advance(5 * time.Second)
	waitFor(t, "the broadcaster, 5 s after not listed", func() bool {
		w, listed := c.Broadcaster(id)
		return listed && w != nil && w.Provider == "phone"
	})
}
