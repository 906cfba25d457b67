package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// shiftedClock is the wall clock moved by an offset the test sets: the
// bootstrap's, so that the test can take it to the day before a scheduled
// broadcast and back without waiting.
type shiftedClock struct{ off atomic.Int64 }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// TestSchedulePage drives scheduled broadcasts through two nodes'
// directory pages in Chromium (tests/browser/schedule.mjs) at a phone's
// size and both tablets', in a time zone that is not the machine's: alice
// is refused a time in the past and an overlong title with their messages,
// schedules a broadcast; bob, who follows her, sees it under Upcoming in
// his time zone, asks a question (an overlong one refused) and up-votes
// alice's, which then ranks first; alice ticks bob's off; the bootstrap's
// clock is taken to the day before and bob's page shows the reminder. No
// console error, no sideways scroll. Then alice goes live: her entry on
// bob's page names her next scheduled broadcast; the bootstrap's own
// Upcoming view, and that, are looked at too (pages.mjs). PEERSCOPE_SHOTS=DIR keeps the follower's
// Upcoming view at each size (upcoming-phone.png, upcoming-tablet.png,
// upcoming-portrait.png), what docs/screens/ holds.
func TestSchedulePage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	clk := &shiftedClock{}
	// The nodes sign with the wall clock while the bootstrap's moves a day
	// ahead and back: its skew allowance covers that.
	svc := startBootstrapWith(t, bootstrap.ServerConfig{Now: clk.Now, ClockSkew: 10 * 24 * time.Hour})
	cfg := node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second}
	alice, bob := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	bobClient := &api.Client{Base: svc.URL(), Key: bob.Host().Peerstore().PrivKey(bob.ID())}
	if err := bobClient.Follow(t.Context(), "twitter:100"); err != nil {
		t.Fatal(err)
	}

	// The test's hand on the clock: the day before the titled broadcast,
	// the reminders due sent, then back to now.
	remind := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := (&api.Client{Base: svc.URL()}).Upcoming(r.Context(), "twitter:100")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for _, s := range list {
			if s.Title != r.URL.Query().Get("title") {
				continue
			}
			clk.off.Store(int64(time.Until(s.Starts.Add(-24*time.Hour + time.Minute))))
			n, err := svc.Server.SendReminders(r.Context())
			clk.off.Store(0)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, n)
			return
		}
		http.Error(w, "no such schedule", http.StatusNotFound)
	}))
	defer remind.Close()

	shots := os.Getenv("PEERSCOPE_SHOTS")
	for _, size := range []string{"phone", "tablet", "portrait"} {
		title := "Harbour at dawn, " + size
		args := []string{"--caster", alice.HTTPURL() + "/directory/", "--follower", bob.HTTPURL() + "/directory/",
			"--remind", remind.URL, "--title", title, "--size", size}
		if shots != "" {
			args = append(args, "--shot", filepath.Join(shots, "upcoming-"+size+".png"))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		out, err := browsertest.Run(ctx, t, "schedule.mjs", args...)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Error, PastMessage, LongMessage, UpcomingItem, TimeShown, TimeWanted, LongQuestion, Reminded, Reminder string
			Ranked                                                                                                 []string
			OwnVoteDisabled, Ticked                                                                                bool
			Sideways                                                                                               map[string]bool
			Errors                                                                                                 []string
			Refused                                                                                                int
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Logf("%s: %+v", size, r)
		switch {
		case r.Error != "":
			t.Fatalf("%s: %s", size, r.Error)
		case len(r.Errors) > 0 || r.Refused != 3:
			t.Errorf("%s: console errors %q, %d refused requests (want the 3 bad inputs)", size, r.Errors, r.Refused)
		case r.Sideways["caster"] || r.Sideways["follower"]:
			t.Errorf("%s: sideways scroll %v", size, r.Sideways)
		}
		if !strings.Contains(r.PastMessage, "in the past") || !strings.Contains(r.LongMessage, "at most 140 characters") {
			t.Errorf("%s: bad input said %q and %q", size, r.PastMessage, r.LongMessage)
		}
		if !strings.Contains(r.UpcomingItem, "@alice") || r.TimeShown == "" || r.TimeShown != r.TimeWanted {
			t.Errorf("%s: upcoming %q at %q, want %q (Asia/Kolkata)", size, r.UpcomingItem, r.TimeShown, r.TimeWanted)
		}
		if !strings.Contains(r.LongQuestion, "at most 280 characters") {
			t.Errorf("%s: an overlong question said %q", size, r.LongQuestion)
		}
		if len(r.Ranked) != 2 || !strings.Contains(r.Ranked[0], "Which harbour") || !strings.Contains(r.Ranked[0], "▲ 1") || !r.OwnVoteDisabled || !r.Ticked {
			t.Errorf("%s: questions %q, own vote disabled %v, ticked %v", size, r.Ranked, r.OwnVoteDisabled, r.Ticked)
		}
		if r.Reminded != "1" || !strings.Contains(r.Reminder, "Reminder: "+title+" by Alice @alice in 1 day") {
			t.Errorf("%s: %s reminders sent, the page said %q", size, r.Reminded, r.Reminder)
		}
	}
	// What was refused stored nothing: three schedules, two questions each.
	if n, _ := svc.Store.Count(t.Context(), "schedules"); n != 3 {
		t.Errorf("%d schedules stored, want 3", n)
	}
	if n, _ := svc.Store.Count(t.Context(), "questions"); n != 6 {
		t.Errorf("%d questions stored, want 6", n)
	}

	// Alice goes live: her entry in the live list says what she has
	// scheduled next, on bob's node's page; the bootstrap's own page shows
	// anyone the Upcoming list.
	live, err := alice.GoLive(t.Context(), node.LiveConfig{Title: "Harbour now", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	waitFor(t, 30*time.Second, "alice's broadcast in the directory", func() bool {
		list, err := bobClient.List(t.Context(), api.Query{})
		return err == nil && len(list) == 1
	})
	for _, p := range lookAt(t, 2*time.Minute, 6, "--wait", "1500", "--page", "bootstrap-upcoming="+svc.URL()+"/?tab=upcoming",
		"--page", "live-next="+bob.HTTPURL()+"/directory/") {
		want := "Harbour at dawn, phone"
		if p.Name == "live-next" {
			want = "Next: Harbour at dawn"
		}
		if !strings.Contains(p.All, want) {
			t.Errorf("%s at %s shows %q, want %q", p.Name, p.Size, p.All, want)
		}
	}
}

// TestStudioQuestionsPage: the go-live page, live, shows the questions
// asked in advance of its account's scheduled broadcast, ranked by votes,
// at a phone's size and both tablets' without sideways scroll, and ticks
// one off (tests/browser/studio-questions.mjs); the bootstrap then has it
// answered. PEERSCOPE_SHOTS=DIR keeps studio-questions-<size>.png.
func TestStudioQuestionsPage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}}
	alice, bob := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	clientOf := func(n *node.Node) *api.Client {
		return &api.Client{Base: svc.URL(), Key: n.Host().Peerstore().PrivKey(n.ID())}
	}
	ctx := t.Context()
	sc, err := clientOf(alice).Schedule(ctx, api.ScheduleRequest{Title: "AMA at the harbour", Starts: time.Now().Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var asked []api.Question
	for _, q := range []string{"What lens do you use?", "Which boats come in first, and why do the gulls follow them so closely?"} {
		x, err := clientOf(bob).Ask(ctx, sc.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		asked = append(asked, x)
	}
	if _, err := clientOf(alice).Vote(ctx, sc.ID, asked[1].ID); err != nil {
		t.Fatal(err)
	}
	b, err := alice.GoLive(ctx, node.LiveConfig{Title: "AMA", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--url", b.URLs().BroadcasterPage}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := browsertest.Run(rctx, t, "studio-questions.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error, Ticked, ButtonAfter string
		Answered                   bool
		Errors                     []string
		Sizes                      []struct {
			Size, Heading, Button string
			Questions             []string
			Sideways              bool
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
		if s.Sideways || !strings.Contains(s.Heading, "AMA at the harbour") || len(s.Questions) != 2 || s.Button != "Questions 2" ||
			!strings.HasPrefix(s.Questions[0], "▲ 1Which boats") || !strings.Contains(s.Questions[1], "What lens") {
			t.Errorf("%s: %+v", s.Size, s)
		}
	}
	if !r.Answered || r.Ticked != "What lens do you use?" || r.ButtonAfter != "Questions 1" {
		t.Errorf("ticked %q, answered %v, the button then %q", r.Ticked, r.Answered, r.ButtonAfter)
	}
	qs, err := clientOf(bob).Questions(ctx, sc.ID)
	if err != nil || len(qs) != 2 || !qs[1].Answered || qs[0].Answered {
		t.Errorf("at the bootstrap: %+v %v", qs, err)
	}
}
