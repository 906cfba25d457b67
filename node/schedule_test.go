package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/node"
)

// TestRemindersOverPubSub: a bootstrap (libp2p host with GossipSub, and its
// HTTP service) publishes the reminders of scheduled broadcasts on
// ReminderTopic; a node that reaches it as a bootstrap peer, signed in as
// someone who follows alice, hears alice's broadcast's day-before
// reminder once the bootstrap's clock reaches it (moved by the test), and
// nothing of carol's, whom it does not follow, nor of a peer that is not
// its bootstrap publishing in alice's name.
func TestRemindersOverPubSub(t *testing.T) {
	if testing.Short() {
		t.Skip("real hosts")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, live := bootstrapPublisher(t, ctx)
	clk := &shiftedClock{}
	svc := startBootstrapWith(t, bootstrap.ServerConfig{OnLive: live.Notify, Now: clk.Now, ClockSkew: 10 * 24 * time.Hour,
		MaxSchedules: 100, PeerInfo: func() (string, []string) { return h.ID().String(), nil }})

	heard := make(chan api.Reminder, 8)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, NATWait: -1}
	alice, carol := newNode(t, cfg), newNode(t, cfg)
	cfg.BootstrapPeers = []peer.AddrInfo{{ID: h.ID(), Addrs: h.Host().Addrs()}}
	cfg.OnReminder = func(r api.Reminder) { heard <- r }
	bob := newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	signIn(t, carol, "300")
	clientOf := func(n *node.Node) *api.Client {
		return &api.Client{Base: svc.URL(), Key: n.Host().Peerstore().PrivKey(n.ID())}
	}
	if err := clientOf(bob).Follow(ctx, "twitter:100"); err != nil {
		t.Fatal(err)
	}

	// A forger: a peer of bob's node on the topic, publishing well-formed
	// reminders in alice's name. Its messages reach bob first (a direct
	// link): if bob's node took reminders from any origin, the first it
	// heard would be forged.
	forger, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	fps, err := pubsub.NewGossipSub(ctx, forger)
	if err != nil {
		t.Fatal(err)
	}
	ftopic, err := fps.Join(api.ReminderTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := forger.Connect(ctx, peer.AddrInfo{ID: bob.ID(), Addrs: bob.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the forger to see bob's node on the topic", func() bool {
		return slices.Contains(ftopic.ListPeers(), bob.ID())
	})
	forged, err := api.EncodeReminderNotice(api.Reminder{Step: api.StepD1, Schedule: &api.Scheduled{ID: 1, Title: "forged",
		Starts: time.Now().Add(24 * time.Hour), Who: &api.Account{Provider: "twitter", Subject: "100", Handle: "@alice"}}})
	if err != nil {
		t.Fatal(err)
	}

	// The reminder goes out once; bob's subscription may not have reached
	// the bootstrap's GossipSub yet: new schedules until one is heard.
	// Carol's go out first each time: bob's node must pass them over.
	deadline := time.After(30 * time.Second)
	for i := 0; ; i++ {
		if err := ftopic.Publish(ctx, forged); err != nil {
			t.Fatal(err)
		}
		starts := time.Now().Add(48 * time.Hour)
		for _, c := range []*api.Client{clientOf(carol), clientOf(alice)} {
			if _, err := c.Schedule(ctx, api.ScheduleRequest{Title: "Harbour at dawn", Starts: starts, Reminders: []string{api.StepD1}}); err != nil {
				t.Fatal(err)
			}
		}
		clk.off.Store(int64(24*time.Hour + time.Minute))
		n, err := svc.Server.SendReminders(ctx)
		clk.off.Store(0)
		if err != nil || n != 2 {
			t.Fatalf("%d reminders sent, %v", n, err)
		}
		select {
		case r := <-heard:
			if r.Step != api.StepD1 || r.Schedule.Who.Handle != "@alice" || r.Schedule.Title != "Harbour at dawn" || !r.Schedule.Starts.Equal(starts.UTC().Truncate(0)) {
				t.Fatalf("heard %+v of %+v", r, r.Schedule)
			}
			return
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("no reminder reached the follower's node")
		}
	}
}

// TestStudioQuestions: the go-live page's stream key reads the questions
// asked in advance of its account's scheduled broadcast, ranked by votes,
// and ticks one off as the account; no key gets WHIP's 401, a form is
// refused; a node that is not signed in has no schedule to show.
func TestStudioQuestions(t *testing.T) {
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}}
	alice, bob, anon := newNode(t, cfg), newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, bob, "200")
	clientOf := func(n *node.Node) *api.Client {
		return &api.Client{Base: svc.URL(), Key: n.Host().Peerstore().PrivKey(n.ID())}
	}
	ctx := t.Context()
	// A later one of alice's, and the one due now (in two hours).
	if _, err := clientOf(alice).Schedule(ctx, api.ScheduleRequest{Title: "Next week", Starts: time.Now().Add(7 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sc, err := clientOf(alice).Schedule(ctx, api.ScheduleRequest{Title: "AMA at the harbour", Starts: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	q1, err := clientOf(bob).Ask(ctx, sc.ID, "What lens?")
	if err != nil {
		t.Fatal(err)
	}
	q2, err := clientOf(bob).Ask(ctx, sc.ID, "Which boats?")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientOf(alice).Vote(ctx, sc.ID, q2.ID); err != nil {
		t.Fatal(err)
	}

	b, err := alice.GoLive(ctx, node.LiveConfig{Title: "AMA", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{}
	defer c.CloseIdleConnections()
	base := alice.HTTPURL() + "/broadcast/"
	read := func(n *node.Node, key string) studioQuestionsJSON {
		t.Helper()
		code, _, body := goLiveCall{method: "GET", url: n.HTTPURL() + "/broadcast/questions", key: key}.do(t, c)
		var out studioQuestionsJSON
		if err := json.Unmarshal([]byte(body), &out); err != nil || code != http.StatusOK {
			t.Fatalf("GET questions: %d %s (%v)", code, body, err)
		}
		return out
	}
	got := read(alice, b.StreamKey())
	if got.Schedule == nil || got.Schedule.ID != sc.ID || len(got.Questions) != 2 || got.Questions[0].ID != q2.ID || got.Questions[0].Votes != 1 || got.Questions[1].ID != q1.ID {
		t.Fatalf("studio questions: %+v", got)
	}
	for _, tc := range []struct {
		name string
		q    goLiveCall
		want int
	}{
		{"no key", goLiveCall{method: "GET", url: base + "questions"}, http.StatusUnauthorized},
		{"a tick without a key", goLiveCall{method: "POST", url: base + "questions/answered", contentType: "application/json",
			body: fmt.Sprintf(`{"schedule":%d,"question":%d}`, sc.ID, q1.ID)}, http.StatusUnauthorized},
		{"a tick by a form", goLiveCall{method: "POST", url: base + "questions/answered", key: b.StreamKey(), contentType: "application/x-www-form-urlencoded",
			body: "schedule=1"}, http.StatusUnsupportedMediaType},
		{"a tick of another schedule's question", goLiveCall{method: "POST", url: base + "questions/answered", key: b.StreamKey(), contentType: "application/json",
			body: fmt.Sprintf(`{"schedule":%d,"question":%d}`, sc.ID+1, q1.ID)}, http.StatusNotFound},
	} {
		if code, _, body := tc.q.do(t, c); code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.want)
		}
	}
	tick := goLiveCall{method: "POST", url: base + "questions/answered", key: b.StreamKey(), contentType: "application/json",
		body: fmt.Sprintf(`{"schedule":%d,"question":%d}`, sc.ID, q1.ID)}
	if code, _, body := tick.do(t, c); code != http.StatusOK || !strings.Contains(body, `"answered":true`) {
		t.Fatalf("tick: %d %s", code, body)
	}
	if got := read(alice, b.StreamKey()); !got.Questions[1].Answered || got.Questions[0].Answered {
		t.Fatalf("after the tick: %+v", got.Questions)
	}

	// Not signed in: nothing scheduled to answer.
	ab, err := anon.GoLive(ctx, node.LiveConfig{Title: "anon", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(anon, ab.StreamKey()); got.Schedule != nil || len(got.Questions) != 0 {
		t.Fatalf("an anonymous node's studio: %+v", got)
	}
}

type studioQuestionsJSON struct {
	Schedule  *api.Scheduled
	Questions []api.Question
}
