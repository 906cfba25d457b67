package bootstrap_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestFollowedBeyondTheCap: with 250 broadcasts live and 250 coming up
// before a followed account's, the public lists (at most 200) miss the
// followed one; followed=1 (signed) finds its live broadcast and its
// schedule, and those of nobody else, and the Upcoming search (q=) finds
// a schedule past the first 200 too. Unsigned, not signed in, or any value
// but 1: refused, saying why.
func TestFollowedBeyondTheCap(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		const crowd = 250
		e := newEnv(t, func(c *bootstrap.ServerConfig) {
			c.MaxLiveAnonymous = -1
			c.MaxSchedules = crowd
			off := bootstrap.Rate{PerSecond: -1}
			c.RateIP, c.RatePeer, c.RateAccount = off, off, off
		})
		ctx := context.Background()
		alice, bob, viewer, anon, stranger := e.node(1), e.node(2), e.node(3), e.node(9), e.node(10)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		e.x.AddUser(xUser("300", "viewer"))
		e.signIn(viewer, "300")
		if err := viewer.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}

		// alice went live first, then the crowd: the newest first, she is
		// past the cap.
		t0 := e.clock.Now()
		live := alice.broadcastID("alice1")
		if _, err := alice.c.Announce(ctx, live, announcement(live, "Harbour now", t0, 1)); err != nil {
			t.Fatal(err)
		}
		for i := range crowd {
			id := anon.broadcastID(fmt.Sprintf("crowd%d", i))
			if _, err := anon.c.Announce(ctx, id, announcement(id, "Street", t0.Add(time.Duration(i+1)*time.Millisecond), 1)); err != nil {
				t.Fatal(err)
			}
		}
		// bob's 250 broadcasts come up before alice's one.
		for i := range crowd {
			if _, err := bob.c.Schedule(ctx, api.ScheduleRequest{Title: fmt.Sprintf("Bob's show %d", i), Starts: t0.Add(time.Hour + time.Duration(i)*time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "Harbour at dawn", Starts: t0.Add(10 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}

		public, err := stranger.c.List(ctx, api.Query{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		upcoming, err := stranger.c.Upcoming(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(public) != 200 || slices.Contains(ids(public), live) || len(upcoming) != 200 || slices.ContainsFunc(upcoming, byAlice) {
			t.Fatalf("the public lists: %d live (alice's in them: %v), %d upcoming: the test's premise fails", len(public), slices.Contains(ids(public), live), len(upcoming))
		}

		got, err := viewer.c.List(ctx, api.Query{Limit: 200, Followed: true})
		if err != nil || !slices.Equal(ids(got), []string{live}) {
			t.Errorf("followed live: %v %v, want [%s]", ids(got), err, live)
		}
		if got, err := viewer.c.List(ctx, api.Query{Limit: 200, Followed: true, Text: "nothing like it"}); err != nil || len(got) != 0 {
			t.Errorf("followed live, searched: %v %v", ids(got), err)
		}
		next, err := viewer.c.Schedules(ctx, api.ScheduleQuery{Followed: true})
		if err != nil || len(next) != 1 || next[0].Title != "Harbour at dawn" {
			t.Errorf("followed upcoming: %+v %v", next, err)
		}
		found, err := stranger.c.Schedules(ctx, api.ScheduleQuery{Text: "dawn"})
		if err != nil || len(found) != 1 || !byAlice(found[0]) {
			t.Errorf("upcoming searched for dawn: %+v %v", found, err)
		}
		if found, err := stranger.c.Schedules(ctx, api.ScheduleQuery{Text: "BOB'S SHOW 249"}); err != nil || len(found) != 1 {
			t.Errorf("upcoming searched for Bob's last: %d %v", len(found), err)
		}
		// bob follows nobody: nothing, not everything.
		if got, err := bob.c.List(ctx, api.Query{Followed: true}); err != nil || len(got) != 0 {
			t.Errorf("bob's followed live: %v %v", ids(got), err)
		}

		// Refusals.
		for _, c := range []struct {
			path   string
			status int
			want   string
		}{
			{"/api/v1/broadcasts?followed=1", http.StatusUnauthorized, ""},
			{"/api/v1/schedules?followed=1", http.StatusUnauthorized, ""},
			{"/api/v1/broadcasts?followed=yes", http.StatusBadRequest, "followed is 1"},
			{"/api/v1/schedules?followed=true", http.StatusBadRequest, "followed is 1"},
			{"/api/v1/schedules?q=" + strings.Repeat("x", 101), http.StatusBadRequest, "at most 100 characters"},
		} {
			st, _, body := getBody(t, e.url+c.path)
			if st != c.status || !strings.Contains(body, c.want) {
				t.Errorf("%s: %d %s, want %d %q", c.path, st, body, c.status, c.want)
			}
		}
		// A peer that never signed in, signing its request.
		_, err = stranger.c.List(ctx, api.Query{Followed: true})
		if st, _ := apiStatus(err); st != http.StatusUnauthorized && st != http.StatusForbidden {
			t.Errorf("followed, not signed in: %v", err)
		}
	})
}

func byAlice(s api.Scheduled) bool { return s.Who != nil && s.Who.Handle == "@alice" }
