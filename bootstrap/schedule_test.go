package bootstrap_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestScheduleLimits: a signed-in broadcaster schedules a broadcast; what
// breaks a limit (no sign-in, an empty or overlong title, a bad
// description, a time in the past or more than a year ahead, an unknown or
// repeated reminder step, one schedule too many) is refused with a message
// that says what to change, and stores nothing. The directory lists the
// upcoming ones (all, or one account's); only the broadcaster cancels.
func TestScheduleLimits(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.MaxSchedules = 3 })
		ctx := context.Background()
		alice, bob, anon := e.node(1), e.node(2), e.node(9)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		now := e.clock.Now()
		good := api.ScheduleRequest{Title: "Harbour at dawn", Description: "Boats coming in.\nBring questions.",
			Starts: now.Add(48 * time.Hour), Reminders: []string{api.StepD1, api.StepHour}}

		_, err := anon.c.Schedule(ctx, good)
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		for _, c := range []struct {
			name, want string
			change     func(*api.ScheduleRequest)
		}{
			{"empty title", "title is empty", func(r *api.ScheduleRequest) { r.Title = "  " }},
			{"overlong title", "at most 140 characters", func(r *api.ScheduleRequest) { r.Title = strings.Repeat("é", 141) }},
			{"title on two lines", "on one line", func(r *api.ScheduleRequest) { r.Title = "a\nb" }},
			{"overlong description", "description", func(r *api.ScheduleRequest) { r.Description = strings.Repeat("x", 1001) }},
			{"control in description", "description", func(r *api.ScheduleRequest) { r.Description = "a\x07b" }},
			{"no time", "start time is missing", func(r *api.ScheduleRequest) { r.Starts = time.Time{} }},
			{"past", "in the past", func(r *api.ScheduleRequest) { r.Starts = now.Add(-time.Minute) }},
			{"now", "in the past", func(r *api.ScheduleRequest) { r.Starts = now }},
			{"too far", "more than a year ahead", func(r *api.ScheduleRequest) { r.Starts = now.Add(366 * 24 * time.Hour) }},
			{"unknown step", "want d7, d3, d1 or h1", func(r *api.ScheduleRequest) { r.Reminders = []string{"d5"} }},
			{"step twice", "given twice", func(r *api.ScheduleRequest) { r.Reminders = []string{"d1", "d1"} }},
		} {
			r := good
			c.change(&r)
			_, err := alice.c.Schedule(ctx, r)
			mustStatus(t, err, http.StatusBadRequest, "bad_request")
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %q does not say %q", c.name, err, c.want)
			}
		}
		if st, code := e.raw(alice, http.MethodPost, "/api/v1/schedules", "application/json", []byte(`{"title":"x","starts":"2026-03-05T12:00:00Z","live":true}`)); st != http.StatusBadRequest {
			t.Errorf("unknown field: %d %s", st, code)
		}
		// Reminders posted on X need a sign-in that allowed posting.
		tw := good
		tw.Tweet = true
		_, err = alice.c.Schedule(ctx, tw)
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		if !strings.Contains(err.Error(), "sign in with X allowing posts") {
			t.Errorf("a tweet without the scope: %q", err)
		}
		if st, _ := e.raw(alice, http.MethodPost, "/api/v1/schedules", "text/plain", []byte(`{}`)); st != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: %d", st)
		}
		if n := e.count("schedules"); n != 0 {
			t.Fatalf("%d schedules stored by refused requests", n)
		}

		// Three upcoming per account; the fourth is refused, bob's are his own.
		var made []api.Scheduled
		for i := range 3 {
			r := good
			r.Starts = now.Add(time.Duration(3-i) * 24 * time.Hour)
			sc, err := alice.c.Schedule(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, sc)
		}
		_, err = alice.c.Schedule(ctx, good)
		mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
		if !strings.Contains(err.Error(), "cancel one first") {
			t.Errorf("limit message %q", err)
		}
		if _, err := bob.c.Schedule(ctx, good); err != nil {
			t.Fatal(err)
		}
		if n := e.count("schedules"); n != 4 {
			t.Fatalf("%d schedules, want 4", n)
		}
		sc := made[0]
		if sc.Who == nil || sc.Who.Handle != "@alice" || sc.Title != good.Title || !slices.Equal(sc.Reminders, []string{"d1", "h1"}) || !sc.Starts.Equal(now.Add(72*time.Hour)) {
			t.Fatalf("scheduled %+v", sc)
		}

		// Upcoming: soonest first; one account's alone.
		all, err := anon.c.Upcoming(ctx, "")
		if err != nil || len(all) != 4 || all[0].ID != made[2].ID || all[3].ID != made[0].ID {
			t.Fatalf("upcoming %+v %v", all, err)
		}
		mine, err := anon.c.Upcoming(ctx, "twitter:200")
		if err != nil || len(mine) != 1 || mine[0].Who.Handle != "@bob" {
			t.Fatalf("bob's upcoming %+v %v", mine, err)
		}
		if none, err := anon.c.Upcoming(ctx, "twitter:999"); err != nil || len(none) != 0 {
			t.Fatalf("a stranger's upcoming %+v %v", none, err)
		}

		// Only its broadcaster cancels; a cancelled one is gone.
		mustStatus(t, bob.c.CancelSchedule(ctx, sc.ID), http.StatusForbidden, "forbidden")
		if err := alice.c.CancelSchedule(ctx, sc.ID); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, alice.c.CancelSchedule(ctx, sc.ID), http.StatusNotFound, "not_found")
		if st, _ := e.raw(alice, http.MethodDelete, "/api/v1/schedules/nope", "", nil); st != http.StatusNotFound {
			t.Errorf("DELETE a bad ID: %d", st)
		}
		if _, err := alice.c.Schedule(ctx, good); err != nil {
			t.Fatalf("after a cancel: %v", err)
		}

		// A schedule leaves Upcoming an hour after its start, and the store a
		// day after.
		e.clock.Advance(25 * time.Hour)
		if list, _ := anon.c.Upcoming(ctx, "twitter:100"); len(list) != 2 {
			t.Fatalf("25 h on, alice's upcoming: %+v", list)
		}
		e.clock.Advance(24 * time.Hour)
		if _, err := e.svc.Server.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count("schedules"); n != 3 {
			t.Fatalf("after pruning, %d schedules, want 3", n)
		}
	})
}

// TestReminders moves the bootstrap's clock through a week: each chosen
// step reaches the followers' feeds and the go-live hook once, at its time,
// and only the followers'; a step not chosen sends nothing; a step already
// past when the broadcast was scheduled is never sent; a cancelled
// broadcast reminds nobody; alice's reminders are posted on her X account.
func TestReminders(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, carol, dave := e.node(1), e.node(2), e.node(3), e.node(4)
		e.x.AddUser(xUser("300", "carol"))
		e.x.AddUser(xUser("400", "dave"))
		e.signIn(alice, "100", api.ScopeTweet) // her reminders are posted on X too
		e.signIn(bob, "200")
		e.signIn(carol, "300")
		e.signIn(dave, "400")
		if err := carol.c.Follow(ctx, "twitter:100"); err != nil {
			t.Fatal(err)
		}
		if err := dave.c.Follow(ctx, "twitter:200"); err != nil {
			t.Fatal(err)
		}
		feed := func(n *node) *sse {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/feed", nil)
			if err := api.SignRequest(req, nil, n.key, e.svc.Keys.ID(), e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return openSSE(t, req)
		}
		carolFeed, daveFeed := feed(carol), feed(dave)

		t0 := e.clock.Now()
		a, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "Ask me anything", Starts: t0.Add(8 * 24 * time.Hour),
			Reminders: []string{api.StepWeek, api.StepD1, api.StepHour}, Tweet: true})
		if err != nil {
			t.Fatal(err)
		}
		// Bob's is in two days: its D-3 has passed already and is never sent.
		b, err := bob.c.Schedule(ctx, api.ScheduleRequest{Title: "Bob's kitchen", Starts: t0.Add(48 * time.Hour),
			Reminders: []string{api.StepD3, api.StepD1}})
		if err != nil {
			t.Fatal(err)
		}
		gone, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "Called off", Starts: t0.Add(6 * 24 * time.Hour),
			Reminders: []string{api.StepD1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.c.CancelSchedule(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}

		remind := func(want int) {
			t.Helper()
			n, err := e.svc.Server.SendReminders(ctx)
			if err != nil || n != want {
				t.Fatalf("at %s: %d reminders sent (%v), want %d", e.clock.Now().Sub(t0), n, err, want)
			}
		}
		hook := func(id int64, step string, followers ...string) {
			t.Helper()
			select {
			case ev := <-e.live:
				if ev.Kind != bootstrap.EventReminder || ev.Schedule.ID != id || ev.Step != step || !slices.Equal(ev.Followers, followers) {
					t.Fatalf("hook heard %s %+v step %s followers %v; want %d %s %v", ev.Kind, ev.Schedule, ev.Step, ev.Followers, id, step, followers)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the hook heard nothing")
			}
		}
		expect := func(s *sse, id int64, step, title string) {
			t.Helper()
			ev := s.next(t)
			if ev.Kind != bootstrap.EventReminder || ev.Schedule == nil || ev.Schedule.ID != id || ev.Step != step || ev.Schedule.Title != title {
				t.Fatalf("feed: %s %+v step %q; want reminder %d %s", ev.Kind, ev.Schedule, ev.Step, id, step)
			}
		}

		remind(0) // nothing is due yet (bob's D-3 passed before it was made)
		e.clock.Advance(24*time.Hour + time.Minute)
		remind(2) // alice's D-7 and bob's D-1
		expect(carolFeed, a.ID, api.StepWeek, "Ask me anything")
		expect(daveFeed, b.ID, api.StepD1, "Bob's kitchen") // dave follows bob, not alice
		got := map[string]bool{}
		for range 2 {
			select {
			case ev := <-e.live:
				got[ev.Step+" "+strings.Join(ev.Followers, ",")] = true
			case <-time.After(10 * time.Second):
				t.Fatal("the hook heard nothing")
			}
		}
		if !got["d7 twitter:300"] || !got["d1 twitter:400"] {
			t.Fatalf("hook heard %v", got)
		}
		remind(0) // never twice

		e.clock.Set(t0.Add(5*24*time.Hour + time.Minute)) // alice's D-3: not chosen; the cancelled one's D-1
		remind(0)
		e.clock.Set(t0.Add(7*24*time.Hour + time.Second))
		remind(1)
		expect(carolFeed, a.ID, api.StepD1, "Ask me anything")
		hook(a.ID, api.StepD1, "twitter:300")
		e.clock.Set(t0.Add(8*24*time.Hour - 59*time.Minute))
		remind(1)
		expect(carolFeed, a.ID, api.StepHour, "Ask me anything")
		hook(a.ID, api.StepHour, "twitter:300")
		e.clock.Set(t0.Add(8*24*time.Hour + time.Minute))
		remind(0)
		// Alice's three reminders were posted on her X account; bob's were not.
		var posted []string
		for _, tw := range e.x.Tweets() {
			if tw.Author != "100" {
				t.Errorf("tweet by %s: %q", tw.Author, tw.Text)
			}
			posted = append(posted, tw.Text)
		}
		link := ": " + e.url + "/?tab=upcoming" // the Upcoming list, on the bootstrap's page
		if !slices.Equal(posted, []string{"Ask me anything — live on Peerscope in 7 days" + link, "Ask me anything — live on Peerscope tomorrow" + link,
			"Ask me anything — live on Peerscope in an hour" + link}) {
			t.Errorf("tweets %q", posted)
		}
	})
}

// TestRemindersAfterDowntime: a bootstrap that was not running over D-1
// and the hour before sends the hour before alone, once.
func TestRemindersAfterDowntime(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice := e.node(1)
		e.signIn(alice, "100")
		t0 := e.clock.Now()
		a, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "Late", Starts: t0.Add(3 * 24 * time.Hour),
			Reminders: []string{api.StepD1, api.StepHour}})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Set(a.Starts.Add(-30 * time.Minute))
		if n, err := e.svc.Server.SendReminders(ctx); n != 1 || err != nil {
			t.Fatalf("%d sent, %v", n, err)
		}
		select {
		case ev := <-e.live:
			if ev.Step != api.StepHour {
				t.Fatalf("sent %s, want the hour before", ev.Step)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the hook heard nothing")
		}
		if n, _ := e.svc.Server.SendReminders(ctx); n != 0 {
			t.Fatalf("%d sent again", n)
		}
	})
}

// TestQuestions: questions in advance, asked by anyone signed in, one
// up-vote per account and question (not one's own), listed by votes; an
// empty or overlong question, or a flood from one account, is refused and
// stores nothing; only the broadcaster ticks one off; the questions stay
// readable once the broadcast is live (the studio reads them), closed to
// new ones an hour after the start.
func TestQuestions(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) {
			c.Questions = bootstrap.QuestionLimits{PerWindow: 3, Window: 10 * time.Minute}
		})
		ctx := context.Background()
		alice, bob, carol, anon := e.node(1), e.node(2), e.node(3), e.node(9)
		e.x.AddUser(xUser("300", "carol"))
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		e.signIn(carol, "300")
		sc, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "AMA", Starts: e.clock.Now().Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}

		_, err = anon.c.Ask(ctx, sc.ID, "who are you?")
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		_, err = bob.c.Ask(ctx, sc.ID, strings.Repeat("?", api.MaxQuestion+1))
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		if !strings.Contains(err.Error(), "at most 280 characters") {
			t.Errorf("overlong: %q", err)
		}
		_, err = bob.c.Ask(ctx, sc.ID, " ")
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		_, err = bob.c.Ask(ctx, sc.ID+100, "where?")
		mustStatus(t, err, http.StatusNotFound, "not_found")
		if n := e.count("questions"); n != 0 {
			t.Fatalf("%d questions stored by refused requests", n)
		}

		var asked []api.Question
		for _, q := range []string{"first?", "second?", "third?"} {
			x, err := bob.c.Ask(ctx, sc.ID, q)
			if err != nil {
				t.Fatal(err)
			}
			asked = append(asked, x)
		}
		_, err = bob.c.Ask(ctx, sc.ID, "a flood?")
		mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
		if n := e.count("questions"); n != 3 {
			t.Fatalf("%d questions after a flood, want 3", n)
		}
		cq, err := carol.c.Ask(ctx, sc.ID, "carol's?") // the limit is bob's, not the broadcast's
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(11 * time.Minute)
		if _, err := bob.c.Ask(ctx, sc.ID, "after a pause?"); err != nil {
			t.Fatalf("after the window: %v", err)
		}

		// Votes: once per account, not one's own; the list ranks by votes.
		for _, v := range []struct {
			n *node
			q int64
		}{{carol, asked[2].ID}, {carol, asked[2].ID}, {alice, asked[2].ID}, {alice, asked[1].ID}, {bob, cq.ID}} {
			if _, err := v.n.c.Vote(ctx, sc.ID, v.q); err != nil {
				t.Fatal(err)
			}
		}
		_, err = bob.c.Vote(ctx, sc.ID, asked[0].ID)
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		_, err = anon.c.Vote(ctx, sc.ID, asked[0].ID)
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		_, err = carol.c.Vote(ctx, sc.ID, 999)
		mustStatus(t, err, http.StatusNotFound, "not_found")
		if st, _ := e.raw(carol, http.MethodPut, "/api/v1/schedules/1/questions/1/vote", "application/json", []byte(`{}`)); st != http.StatusBadRequest {
			t.Errorf("a vote with a body: %d", st)
		}
		if n := e.count("question_votes"); n != 4 {
			t.Fatalf("%d votes, want 4", n)
		}
		list, err := anon.c.Questions(ctx, sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, q := range list {
			order = append(order, q.Text)
		}
		if !slices.Equal(order, []string{"third?", "second?", "carol's?", "first?", "after a pause?"}) || list[0].Votes != 2 || list[0].Who.Handle != "@bob" {
			t.Fatalf("ranked: %q %+v", order, list[0])
		}
		if up, _ := anon.c.Upcoming(ctx, ""); len(up) != 1 || up[0].Questions != 5 {
			t.Fatalf("upcoming %+v", up)
		}

		// Ticking off is the broadcaster's; the list stays readable while
		// live, and is closed to new questions an hour after the start.
		_, err = bob.c.MarkAnswered(ctx, sc.ID, asked[2].ID)
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		e.clock.Set(sc.Starts.Add(30 * time.Minute))
		if q, err := alice.c.MarkAnswered(ctx, sc.ID, asked[2].ID); err != nil || !q.Answered {
			t.Fatalf("ticked off: %+v %v", q, err)
		}
		e.clock.Set(sc.Starts.Add(61 * time.Minute))
		_, err = carol.c.Ask(ctx, sc.ID, "too late?")
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		if !strings.Contains(err.Error(), "closed") {
			t.Errorf("late question: %q", err)
		}
		if list, err := anon.c.Questions(ctx, sc.ID); err != nil || len(list) != 5 || !list[0].Answered {
			t.Fatalf("while live: %+v %v", list, err)
		}
		// Cancelling takes the questions and votes with it.
		if err := alice.c.CancelSchedule(ctx, sc.ID); err != nil {
			t.Fatal(err)
		}
		if q, v := e.count("questions"), e.count("question_votes"); q != 0 || v != 0 {
			t.Fatalf("after the cancel: %d questions, %d votes", q, v)
		}
	})
}

// TestScheduleLimitsConcurrent: the limits are counted in the transaction
// that writes: twenty schedules sent at once by one account store the
// three allowed, and twenty votes at once by one account count one.
func TestScheduleLimitsConcurrent(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.MaxSchedules = 3 })
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		starts := e.clock.Now().Add(48 * time.Hour)
		var wg sync.WaitGroup
		var refused atomic.Int32
		for range 20 {
			wg.Go(func() {
				_, err := alice.c.Schedule(ctx, api.ScheduleRequest{Title: "at once", Starts: starts})
				if s, _ := apiStatus(err); s == http.StatusTooManyRequests {
					refused.Add(1)
				} else if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := e.count("schedules"); n != 3 || refused.Load() != 17 {
			t.Fatalf("%d schedules stored, %d refused; want 3 and 17", n, refused.Load())
		}
		list, _ := alice.c.Upcoming(ctx, "twitter:100")
		q, err := alice.c.Ask(ctx, list[0].ID, "at once?")
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			wg.Go(func() {
				if _, err := bob.c.Vote(ctx, list[0].ID, q.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if qs, err := bob.c.Questions(ctx, list[0].ID); err != nil || qs[0].Votes != 1 || e.count("question_votes") != 1 {
			t.Fatalf("after twenty votes at once: %+v %v", qs, err)
		}
	})
}
