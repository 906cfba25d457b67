package node_test

import (
	"context"
	"testing"
	"time"

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
// nothing of carol's, whom it does not follow.
func TestRemindersOverPubSub(t *testing.T) {
	if testing.Short() {
		t.Skip("real hosts")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := bootstrap.NewHost(ctx, bootstrap.HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ps, err := pubsub.NewGossipSub(ctx, h.Host())
	if err != nil {
		t.Fatal(err)
	}
	live, err := bootstrap.NewLivePublisher(ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
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

	// The reminder goes out once; bob's subscription may not have reached
	// the bootstrap's GossipSub yet: new schedules until one is heard.
	// Carol's go out first each time: bob's node must pass them over.
	deadline := time.After(30 * time.Second)
	for i := 0; ; i++ {
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
