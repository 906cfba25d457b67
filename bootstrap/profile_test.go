package bootstrap_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/bootstrap/xstandin"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestProfile: an account's profile, by key or @handle, says where its
// identity comes from, counts its followers and follows as they change,
// and lists its live broadcast, its upcoming ones and its replays (an
// expired replay drops out); a phone account shows its masked handle,
// never its number; an anonymous broadcaster's profile is its broadcasts.
// A name that is too long, malformed or unknown is refused with a message
// that says so, and nothing is stored.
func TestProfile(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, carol, anon := e.node(1), e.node(2), e.node(3), e.node(9)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		const phone = "+15550177"
		if err := carol.c.PhoneStart(ctx, phone); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.c.PhoneVerify(ctx, phone, e.codes.code(phone)); err != nil {
			t.Fatal(err)
		}

		t0 := e.clock.Now()
		old, live := alice.broadcastID("old1"), alice.broadcastID("live1")
		if _, err := alice.c.Announce(ctx, old, announcement(old, "Yesterday's harbour", t0, 1)); err != nil {
			t.Fatal(err)
		}
		end := announcement(old, "Yesterday's harbour", t0, 2)
		end.Ended = t0.Add(time.Minute)
		if _, err := alice.c.Announce(ctx, old, end); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.c.PublishReplay(ctx, old, "bafy-old"); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Minute)
		if _, err := alice.c.Announce(ctx, live, announcement(live, "Harbour now", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "Harbour at dawn", Starts: e.clock.Now().Add(48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		a1 := anon.broadcastID("anon1")
		if _, err := anon.c.Announce(ctx, a1, announcement(a1, "Nobody's street", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}

		// By key and by handle, the same; nobody follows alice yet.
		for _, who := range []string{"twitter:100", "@alice"} {
			p, err := anon.c.Profile(ctx, who)
			if err != nil {
				t.Fatalf("%s: %v", who, err)
			}
			if p.Key != "twitter:100" || p.Source != api.SourceTwitter || p.Who == nil || p.Who.Name != "Alice Example" ||
				p.Followers != 0 || p.Following != 0 {
				t.Fatalf("%s: %+v", who, p)
			}
			if !slices.Equal(ids(p.Live), []string{live}) || !slices.Equal(ids(p.Replays), []string{old}) ||
				len(p.Upcoming) != 1 || p.Upcoming[0].Title != "Harbour at dawn" {
				t.Fatalf("%s: live %v, replays %v, upcoming %+v", who, ids(p.Live), ids(p.Replays), p.Upcoming)
			}
		}

		// Follows count on both sides, and uncount.
		if err := bob.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if err := carol.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if err := bob.c.Follow(ctx, "phone:nobody-here"); err != nil { // a key not signed in yet counts as a follow
			t.Fatal(err)
		}
		counts := func(who string) (int, int) {
			t.Helper()
			p, err := anon.c.Profile(ctx, who)
			if err != nil {
				t.Fatalf("%s: %v", who, err)
			}
			return p.Followers, p.Following
		}
		if f, g := counts("@alice"); f != 2 || g != 0 {
			t.Errorf("alice: %d followers, %d following; want 2, 0", f, g)
		}
		if f, g := counts("@bob"); f != 0 || g != 2 {
			t.Errorf("bob: %d followers, %d following; want 0, 2", f, g)
		}
		if err := bob.c.Unfollow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if f, _ := counts("twitter:100"); f != 1 {
			t.Errorf("alice after bob's unfollow: %d followers, want 1", f)
		}

		// A phone account: the masked handle, the source, never the number.
		follows, err := carol.c.Follows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, _, body := getBody(t, e.url+"/api/v1/profiles/"+url.PathEscape(follows.Account))
		if st != http.StatusOK || !strings.Contains(body, `"source":"phone"`) || strings.Contains(body, "5550177") || !strings.Contains(body, "0177") {
			t.Errorf("carol's profile: %d %s", st, body)
		}

		// Anonymous: its broadcasts, no follows, no account.
		p, err := bob.c.Profile(ctx, anon.id.String())
		if err != nil {
			t.Fatal(err)
		}
		if p.Source != api.SourceAnonymous || p.Who != nil || !slices.Equal(ids(p.Live), []string{a1}) || len(p.Replays) != 0 {
			t.Errorf("anonymous: %+v", p)
		}
		// alice's peer has no anonymous broadcast: nothing to show.
		_, err = bob.c.Profile(ctx, alice.id.String())
		mustStatus(t, err, http.StatusNotFound, "not_found")

		// The replay expires 24 h after its end; the live one has gone quiet.
		e.clock.Advance(24 * time.Hour)
		p, err = bob.c.Profile(ctx, "@alice")
		if err != nil || len(p.Replays) != 0 || len(p.Live) != 0 || len(p.Upcoming) != 1 {
			t.Errorf("a day later: %+v %v", p, err)
		}

		// Bad names: a clear message, nothing stored.
		before := e.count("accounts")
		for _, c := range []struct{ who, want string }{
			{strings.Repeat("a", 201), "at most 200 characters"},
			{"@" + strings.Repeat("x", 300), "at most 200 characters"},
			{"@nobody", "nobody signed in here as @nobody"},
			{"twitter:999", "no account twitter:999 has signed in here"},
			{"not a peer", "is not an account key"},
			{"bad key:", "account"},
		} {
			_, err := bob.c.Profile(ctx, c.who)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%.30q: %v, want %q", c.who, err, c.want)
			}
			if st, _ := apiStatus(err); st != http.StatusBadRequest && st != http.StatusNotFound {
				t.Errorf("%.30q: status %d", c.who, st)
			}
		}
		if n := e.count("accounts"); n != before {
			t.Errorf("%d accounts after the bad names, %d before", n, before)
		}
	})
}

// TestSearchLimit: the directory's search is bounded; an overlong query
// is refused with a message that says the bound.
func TestSearchLimit(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice := e.node(1)
		id := alice.broadcastID("s1")
		if _, err := alice.c.Announce(ctx, id, announcement(id, "Harbour now", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		got, err := alice.c.List(ctx, api.Query{Text: "harbour"})
		if err != nil || !slices.Equal(ids(got), []string{id}) {
			t.Fatalf("search: %v %v", ids(got), err)
		}
		_, err = alice.c.List(ctx, api.Query{Text: strings.Repeat("h", 101)})
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		if !strings.Contains(err.Error(), "at most 100 characters") {
			t.Errorf("an overlong search said %q", err)
		}
	})
}

// TestProfileHandleAnyCase: a handle names its account whatever its case,
// as on X (/u/dana_ho is @Dana_Ho), and the profile shows the handle as
// the account shows it; a phone account still shows its masked handle,
// found by its key, and a handle nobody has is still unknown.
func TestProfileHandleAnyCase(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		e.x.AddUser(xstandin.User{ID: "300", Username: "Dana_Ho", Name: "Dana"})
		dana, carol, anon := e.node(1), e.node(3), e.node(9)
		e.signIn(dana, "300")
		const phone = "+15550177"
		if err := carol.c.PhoneStart(ctx, phone); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.c.PhoneVerify(ctx, phone, e.codes.code(phone)); err != nil {
			t.Fatal(err)
		}
		for _, who := range []string{"@Dana_Ho", "@dana_ho", "@DANA_HO", "@dAnA_hO"} {
			p, err := anon.c.Profile(ctx, who)
			if err != nil {
				t.Errorf("%s: %v", who, err)
				continue
			}
			if p.Key != "twitter:300" || p.Who == nil || p.Who.Handle != "@Dana_Ho" {
				t.Errorf("%s: %+v", who, p)
			}
		}
		if _, err := anon.c.Profile(ctx, "@dana_h"); err == nil || !strings.Contains(err.Error(), "nobody signed in here as @dana_h") {
			t.Errorf("@dana_h: %v", err)
		}
		follows, err := carol.c.Follows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := anon.c.Profile(ctx, follows.Account)
		if err != nil || p.Source != api.SourcePhone || p.Who == nil || !strings.HasPrefix(p.Who.Handle, "+1•••0177·") ||
			strings.Contains(p.Who.Handle, "5550177") {
			t.Errorf("the phone account: %+v %+v %v", p, p.Who, err)
		}
	})
}
