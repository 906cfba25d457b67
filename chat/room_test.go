package chat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/internal/testutil"
)

// --- real hosts on loopback ---

func newHost(t *testing.T) host.Host { return testutil.TCPHost(t) }

// newPubSub starts GossipSub on h with the chat's options and a short
// heartbeat, so the mesh forms quickly.
func newPubSub(t *testing.T, h host.Host) *pubsub.PubSub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	params := GossipSubParams()
	params.HeartbeatInterval = 200 * time.Millisecond
	params.HeartbeatInitialDelay = 50 * time.Millisecond
	ps, err := pubsub.NewGossipSub(ctx, h, append(PubSubOptions(), pubsub.WithGossipSubParams(params))...)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// connectSparse connects hosts in a ring plus two random links each, so
// most messages cross several relays.
func connectSparse(t *testing.T, hosts []host.Host, r *rand.Rand) {
	t.Helper()
	for i, h := range hosts {
		connect(t, h, hosts[(i+1)%len(hosts)])
		for range 2 {
			if j := r.IntN(len(hosts)); j != i {
				connect(t, h, hosts[j])
			}
		}
	}
}

// waitFor polls cond until it holds or within passes (testutil.WaitFor).
var waitFor = testutil.WaitFor

// member is a host with a room and what its room told it.
type member struct {
	name string
	h    host.Host
	ps   *pubsub.PubSub
	room *Room

	mu       sync.Mutex
	comments map[CommentID]*Comment
	summons  []*Summons
	verdicts []*Verdict
	onSummon func(*Summons)
	done     chan struct{}
}

func (m *member) collect() {
	defer close(m.done)
	for e := range m.room.Events() {
		m.mu.Lock()
		switch e := e.(type) {
		case *Comment:
			m.comments[e.ID] = e
		case *Summons:
			m.summons = append(m.summons, e)
			if m.onSummon != nil {
				go m.onSummon(e)
			}
		case *Verdict:
			m.verdicts = append(m.verdicts, e)
		}
		m.mu.Unlock()
	}
}

func (m *member) has(id CommentID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.comments[id] != nil
}

func (m *member) from(p peer.ID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id := range m.comments {
		if id.Author == p {
			n++
		}
	}
	return n
}

func (m *member) moderation(t *testing.T) Moderation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := m.room.Moderation(ctx)
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	return st
}

// testSwarm is a broadcaster and viewers, each a real host with GossipSub
// and a Room, plus raw attackers: hosts whose pubsub joins the topic with no
// validator at all, so they send (and relay) whatever they like.
type testSwarm struct {
	t       *testing.T
	members []*member
	br      *member
	raws    []*rawPeer
}

type swarmOpts struct {
	viewers    int
	raws       int
	identified int // viewers with an attestation
	cfg        func(*Config)
	onSummon   func(m *member, s *Summons)
}

func startSwarm(t *testing.T, o swarmOpts) *testSwarm {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	n := 1 + o.viewers + o.raws
	hosts := make([]host.Host, n)
	pss := make([]*pubsub.PubSub, n)
	for i := range hosts {
		hosts[i] = newHost(t)
	}
	connectSparse(t, hosts, r)
	for i, h := range hosts {
		pss[i] = newPubSub(t, h)
	}
	s := &testSwarm{t: t}
	broadcast := hosts[0].ID().String() + ".chattest"
	for i := range 1 + o.viewers {
		cfg := Config{Broadcast: broadcast, Broadcaster: hosts[0].ID(), Trusted: trusted, BeatInterval: 500 * time.Millisecond}
		if i > 0 && i <= o.identified {
			cfg.Attestation = attestationNow(hosts[i].ID(), fmt.Sprintf("viewer%d", i))
		}
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		room, err := Join(context.Background(), pss[i], hosts[i], cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := &member{name: fmt.Sprintf("viewer%d", i), h: hosts[i], ps: pss[i], room: room,
			comments: map[CommentID]*Comment{}, done: make(chan struct{})}
		if i == 0 {
			m.name = "broadcaster"
			s.br = m
		}
		if o.onSummon != nil {
			m.onSummon = func(sm *Summons) { o.onSummon(m, sm) }
		}
		go m.collect()
		s.members = append(s.members, m)
		t.Cleanup(func() { _ = room.Close(); <-m.done })
	}
	for i := 1 + o.viewers; i < n; i++ {
		s.raws = append(s.raws, newRawPeer(t, hosts[i], pss[i], broadcast))
	}
	s.waitSynced()
	return s
}

// waitSynced waits until every room knows the moderation state and the
// mesh carries a comment from the broadcaster to everyone.
func (s *testSwarm) waitSynced() {
	s.t.Helper()
	waitFor(s.t, 20*time.Second, "every room synced", func() bool {
		for _, m := range s.members {
			if !m.moderation(s.t).Synced {
				return false
			}
		}
		return true
	})
	s.sentinel("warm-up")
}

// sentinel sends a broadcaster comment and waits for it everywhere: what
// was published before it has had its chance to arrive.
func (s *testSwarm) sentinel(text string) {
	s.t.Helper()
	var id CommentID
	waitFor(s.t, 10*time.Second, "the broadcaster may comment", func() bool {
		var err error
		id, err = s.br.room.Comment(context.Background(), text)
		return err == nil
	})
	waitFor(s.t, 20*time.Second, "sentinel "+text+" everywhere", func() bool {
		for _, m := range s.members {
			if !m.has(id) {
				return false
			}
		}
		return true
	})
}

func (s *testSwarm) everywhere(what string, cond func(Moderation) bool) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var behind []string
		for _, m := range s.members {
			if st := m.moderation(s.t); !cond(st) {
				behind = append(behind, fmt.Sprintf("%s (muted %v)", m.name, st.Muted))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			// What the broadcaster decided and who was summoned, so that a
			// failure says where the chain broke.
			for _, m := range s.members {
				m.mu.Lock()
				s.t.Logf("%s: %d summons, verdicts %+v", m.name, len(m.summons), m.verdicts)
				m.mu.Unlock()
			}
			s.t.Fatalf("timed out after 20s waiting for %s at every node; not yet at %s", what, strings.Join(behind, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// attestationNow is a test attestation valid around the real clock.
func attestationNow(p peer.ID, handle string) []byte {
	a := &Attestation{Provider: "twitter", Account: "id-" + handle, Handle: "@" + handle, Name: handle,
		Avatar: "https://example.com/" + handle + ".png", Peer: p,
		Issued: time.Now().Add(-time.Minute), Expires: time.Now().Add(time.Hour)}
	if err := a.Sign(bootKey); err != nil {
		panic(err)
	}
	return a.Marshal()
}

// rawPeer is an attacker: its pubsub has no chat validator, so it publishes
// well-formed, correctly pubsub-signed messages that break the rules, and
// relays anything.
type rawPeer struct {
	h     host.Host
	topic *pubsub.Topic
	mu    sync.Mutex
	seen  [][]byte
	next  uint64
	bcast string
}

func newRawPeer(t *testing.T, h host.Host, ps *pubsub.PubSub, broadcast string) *rawPeer {
	t.Helper()
	topic, err := ps.Join(TopicPrefix + broadcast)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{h: h, topic: topic, bcast: broadcast, next: 1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.seen = append(r.seen, msg.Data)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; sub.Cancel(); _ = topic.Close() })
	return r
}

func (r *rawPeer) publish(t *testing.T, e envelope) {
	t.Helper()
	if err := r.send(e); err != nil {
		t.Fatal(err)
	}
}

func (r *rawPeer) send(e envelope) error {
	e.Broadcast = r.bcast
	if e.Sent == 0 {
		e.Sent = time.Now().UnixNano()
	}
	return r.topic.Publish(context.Background(), e.mustEncode())
}

func (r *rawPeer) comment(t *testing.T, text string) CommentID {
	t.Helper()
	id, err := r.sendComment(text)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *rawPeer) sendComment(text string) (CommentID, error) {
	r.mu.Lock()
	r.next++
	id := uint64(time.Now().UnixNano()) + r.next
	r.mu.Unlock()
	return CommentID{r.h.ID(), id}, r.send(envelope{Comment: &wireComment{ID: id, Text: text}})
}

// captured returns the actions the raw peer has seen on the topic.
func (r *rawPeer) captured() []*signedAction {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*signedAction
	for _, b := range r.seen {
		var e envelope
		if e.unmarshal(b) == nil && e.Action != nil {
			out = append(out, e.Action)
		}
	}
	return out
}

// --- the swarm enforces moderation ---

// TestEnforcement runs on 16 real hosts (a broadcaster, 13 viewers, 2 raw
// attackers, in a sparse GossipSub mesh) and checks at every node that a
// blocked user's comments and comments sent while comments are off are
// delivered 0 times, whoever relays them, and that forged or replayed
// moderation changes nothing.
func TestEnforcement(t *testing.T) {
	if testing.Short() {
		t.Skip("real hosts")
	}
	s := startSwarm(t, swarmOpts{viewers: 13, raws: 2})
	mallory, eve := s.raws[0], s.raws[1]
	bob := s.members[5]
	ctx := context.Background()

	t.Run("block", func(t *testing.T) {
		// Before the block, mallory's comments reach everyone.
		before := mallory.comment(t, "hello before the block")
		waitFor(t, 20*time.Second, "mallory's comment everywhere", func() bool {
			for _, m := range s.members {
				if !m.has(before) {
					return false
				}
			}
			return true
		})
		if err := s.br.room.Block(ctx, mallory.h.ID()); err != nil {
			t.Fatal(err)
		}
		if err := s.br.room.Block(ctx, bob.h.ID()); err != nil {
			t.Fatal(err)
		}
		s.everywhere("mallory and bob blocked", func(st Moderation) bool { return len(st.Blocked) == 2 })
		had := map[*member]int{}
		for _, m := range s.members {
			had[m] = m.from(mallory.h.ID())
		}
		for i := range 20 {
			mallory.comment(t, fmt.Sprintf("blocked comment %d", i))
		}
		if _, err := bob.room.Comment(ctx, "am I blocked?"); !errors.Is(err, ErrBlocked) {
			t.Fatalf("bob's comment: %v, want ErrBlocked", err)
		}
		s.sentinel("after the block")
		for _, m := range s.members {
			if got := m.from(mallory.h.ID()) - had[m]; got != 0 {
				t.Errorf("%s: %d of a blocked user's comments delivered", m.name, got)
			}
			if m.from(bob.h.ID()) != 0 {
				t.Errorf("%s: bob's comment delivered", m.name)
			}
		}
	})

	t.Run("comments-off", func(t *testing.T) {
		// An explicit "comments on" first, for eve to replay later.
		if err := s.br.room.SetCommentsOff(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := s.br.room.SetCommentsOff(ctx, true); err != nil {
			t.Fatal(err)
		}
		s.everywhere("comments off", func(st Moderation) bool { return st.CommentsOff })
		if _, err := s.members[1].room.Comment(ctx, "can I?"); !errors.Is(err, ErrCommentsOff) {
			t.Fatalf("a viewer's comment while off: %v, want ErrCommentsOff", err)
		}
		for i := range 20 {
			eve.comment(t, fmt.Sprintf("comment while off %d", i))
		}
		s.sentinel("the broadcaster may still speak")
		for _, m := range s.members {
			if n := m.from(eve.h.ID()); n != 0 {
				t.Errorf("%s: %d comments sent while comments were off delivered", m.name, n)
			}
		}
	})

	t.Run("late-joiner", func(t *testing.T) {
		// A node that joins now, through one viewer, learns the state
		// from its peers over StateProtocol before it accepts a comment.
		h := newHost(t)
		connect(t, h, s.members[3].h)
		room, err := Join(ctx, newPubSub(t, h), h, Config{Broadcast: s.br.room.cfg.Broadcast,
			Broadcaster: s.br.h.ID(), Trusted: trusted})
		if err != nil {
			t.Fatal(err)
		}
		defer room.Close()
		waitFor(t, 20*time.Second, "the late joiner synced", func() bool {
			st, err := room.Moderation(ctx)
			return err == nil && st.Synced
		})
		st, _ := room.Moderation(ctx)
		if !st.CommentsOff || len(st.Blocked) != 2 {
			t.Fatalf("late joiner's state: %+v", st)
		}
	})

	t.Run("forged-moderation", func(t *testing.T) {
		// Eve replays the broadcaster's own, older "comments on" (she saw
		// every action: she is subscribed), turns a genuine block into an
		// unblock, signs a newer "comments on" herself, and forges a beat.
		var on, block *signedAction
		for _, a := range eve.captured() {
			if a.Op == OpCommentsOff && !a.On {
				on = a
			}
			if a.Op == OpBlock && a.Target == userOfPeer(mallory.h.ID()) {
				block = a
			}
		}
		if on == nil || block == nil {
			t.Fatal("eve did not capture the actions")
		}
		eve.publish(t, envelope{Action: on})
		unblock := *block
		unblock.action.On = false
		unblock.body = unblock.action.mustEncode() // under the block's signature
		eve.publish(t, envelope{Action: &unblock})
		forged := signed(testPeer{id: eve.h.ID(), priv: eve.h.Peerstore().PrivKey(eve.h.ID())},
			action{Broadcast: eve.bcast, Seq: 1 << 62, Op: OpCommentsOff})
		eve.publish(t, envelope{Action: forged})
		eve.publish(t, envelope{Beat: &wireBeat{Audience: 1 << 30}})
		s.sentinel("after the forgeries")
		s.everywhere("comments still off, mallory still blocked", func(st Moderation) bool {
			return st.CommentsOff && slices.Contains(st.Blocked, userOfPeer(mallory.h.ID()))
		})
		for _, m := range s.members {
			st, err := m.room.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Accepted["action"] > 0 && m.moderation(t).Seq >= 1<<62 {
				t.Errorf("%s: took a forged sequence number", m.name)
			}
			v, _ := m.room.Viewers(ctx)
			if v.Live >= 1<<30 {
				t.Errorf("%s: believed a forged beat: %+v", m.name, v)
			}
		}
	})
}

// --- a flooder is throttled; the others' comments still arrive ---

// TestFlood measures, in one run on 20 real hosts, the latency of honest
// comments (5 senders, one a second each) without and then with one peer
// flooding 1,000 comments a second, and checks that every honest comment
// arrives at every node while each node delivers at most what the rate
// limit allows from the flooder. The p99s are reported, not asserted.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("real hosts, 10 s of traffic")
	}
	s := startSwarm(t, swarmOpts{viewers: 18, raws: 1})
	flooder := s.raws[0]
	senders := s.members[1:6]
	const phase = 5 * time.Second

	honest := func(label string, flood bool) (p50, p99 time.Duration, flooded int, took time.Duration) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var sent int
		start := time.Now()
		if flood {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk := time.NewTicker(10 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
						for range 10 { // 1,000 a second
							if _, err := flooder.sendComment("spam spam spam"); err != nil {
								t.Errorf("flood: %v", err)
								return
							}
							sent++
						}
					}
				}
			}()
		}
		var ids []CommentID
		for i := range int(phase / time.Second) {
			for j, m := range senders {
				id, err := m.room.Comment(context.Background(), fmt.Sprintf("%s %d from %d", label, i, j))
				if err != nil {
					t.Fatalf("honest comment refused: %v", err)
				}
				ids = append(ids, id)
			}
			time.Sleep(time.Second) // pacing the honest senders, not waiting for a condition
		}
		close(stop)
		wg.Wait()
		took = time.Since(start)
		waitFor(t, 30*time.Second, label+": every honest comment everywhere", func() bool {
			for _, m := range s.members {
				for _, id := range ids {
					if !m.has(id) {
						return false
					}
				}
			}
			return true
		})
		var lat []time.Duration
		for _, m := range s.members {
			m.mu.Lock()
			for _, id := range ids {
				if id.Author != m.h.ID() {
					c := m.comments[id]
					lat = append(lat, c.Received.Sub(c.At))
				}
			}
			m.mu.Unlock()
		}
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*99/100], sent, took
	}

	p50a, p99a, _, _ := honest("calm", false)
	p50b, p99b, flooded, took := honest("flood", true)
	limit := DefaultLimits().Comment
	allowed := limit.Burst + int(took/limit.Every) + 2 // +2: the flood's last messages arrive a little after took
	worst := 0
	for _, m := range s.members {
		got := m.from(flooder.h.ID())
		worst = max(worst, got)
		if got > allowed {
			t.Errorf("%s delivered %d of the flooder's comments, more than the %d its rate allows", m.name, got, allowed)
		}
	}
	var throttled, rejected uint64
	for _, m := range s.members {
		st, _ := m.room.Stats(context.Background())
		throttled += st.Throttled
		rejected += st.Rejected["comment"]
	}
	t.Logf("honest comments, %d senders × 1/s, %d receivers: without flood p50 %v p99 %v; with flood p50 %v p99 %v",
		len(senders), len(s.members)-1, p50a.Round(100*time.Microsecond), p99a.Round(100*time.Microsecond),
		p50b.Round(100*time.Microsecond), p99b.Round(100*time.Microsecond))
	t.Logf("flooder sent %d comments in %v (%.0f/s); at most %d delivered at any node (rate allows %d); "+
		"validators throttled %d, rejecting %d as flooding (the rest never reached a validator: its neighbours graylisted it)",
		flooded, took.Round(time.Millisecond), float64(flooded)/took.Seconds(), worst, allowed, throttled, rejected)
}

// --- the jury, end to end ---

// TestJury: a viewer reports a comment; the broadcaster's node calls a jury
// of 5 random viewers; their guilty votes mute the author for MuteFor at
// every node; after it the author speaks again; a second conviction mutes
// it for the rest of the broadcast.
func TestJury(t *testing.T) {
	if testing.Short() {
		t.Skip("real hosts")
	}
	const muteFor = 3 * time.Second
	s := startSwarm(t, swarmOpts{
		viewers: 9, identified: 7,
		cfg: func(c *Config) {
			c.MuteFor, c.JuryTimeout = muteFor, 30*time.Second
			c.Audience = func() int { return 9 } // what the mesh's Subtree-1 would say
		},
		onSummon: func(m *member, sm *Summons) {
			if err := m.room.Vote(context.Background(), sm.Call, true); err != nil {
				panic(fmt.Sprintf("%s: vote: %v", m.name, err))
			}
		},
	})
	ctx := context.Background()
	author, reporter := s.members[8], s.members[9] // anonymous viewers
	// The identified viewers' presence reaches the broadcaster with their
	// handles.
	waitFor(t, 20*time.Second, "7 identified viewers at the broadcaster", func() bool {
		v, err := s.br.room.Viewers(ctx)
		return err == nil && len(v.Identified) == 7 && v.Identified[0].Identity.Handle != ""
	})
	// Every viewer learns the count from the broadcaster's beat.
	waitFor(t, 20*time.Second, "the live count at a viewer", func() bool {
		v, err := s.members[4].room.Viewers(ctx)
		return err == nil && v.Live == 9 && len(v.Identified) == 7 && v.Anonymous == 2
	})

	offend := func(text string) CommentID {
		t.Helper()
		id, err := author.room.Comment(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the comment at the reporter", func() bool { return reporter.has(id) })
		if err := reporter.room.Report(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	muted := func(st Moderation) (time.Time, bool) {
		until, ok := st.Muted[userOfPeer(author.h.ID())]
		return until, ok
	}

	first := offend("buy followers at example.com")
	s.everywhere("the author muted", func(st Moderation) bool { _, ok := muted(st); return ok })
	var summoned int
	for _, m := range s.members {
		m.mu.Lock()
		for _, sm := range m.summons {
			if sm.Comment == first {
				summoned++
				if m == author || m == reporter || m == s.br {
					t.Errorf("%s was summoned to judge", m.name)
				}
			}
		}
		m.mu.Unlock()
	}
	if summoned != 5 {
		t.Errorf("%d jurors summoned, want 5", summoned)
	}
	if _, err := author.room.Comment(ctx, "let me speak"); !errors.Is(err, ErrMuted) {
		t.Fatalf("muted author's comment: %v, want ErrMuted", err)
	}
	s.br.mu.Lock()
	if len(s.br.verdicts) != 1 || !s.br.verdicts[0].Guilty {
		t.Errorf("broadcaster's verdicts: %+v", s.br.verdicts)
	}
	s.br.mu.Unlock()

	// After the minute (here muteFor) the author speaks again.
	var back CommentID
	waitFor(t, muteFor+10*time.Second, "the mute to end", func() bool {
		id, err := author.room.Comment(ctx, "sorry")
		back = id
		return err == nil
	})
	waitFor(t, 20*time.Second, "the author's apology everywhere", func() bool {
		for _, m := range s.members {
			if !m.has(back) {
				return false
			}
		}
		return true
	})

	// A repeat offender is muted for the rest of the broadcast.
	offend("buy followers, again")
	s.everywhere("the author muted for good", func(st Moderation) bool {
		until, ok := muted(st)
		return ok && until.IsZero()
	})
}

// --- lifecycle ---

func TestJoinConfig(t *testing.T) {
	h := newHost(t)
	ps := newPubSub(t, h)
	for _, cfg := range []Config{
		{},
		{Broadcast: "b"},
		{Broadcast: "b", Broadcaster: peer.ID("not a key")},
		{Broadcast: "b", Broadcaster: h.ID(), JurySize: 99},
		{Broadcast: "b", Broadcaster: h.ID(), Limits: Limits{Comment: Rate{Every: -1, Burst: 1}}},
		{Broadcast: "b", Broadcaster: h.ID(), Attestation: []byte("junk")},
		{Broadcast: "b", Broadcaster: h.ID(), Attestation: attestationNow(bob.id, "bob"), Trusted: trusted}, // someone else's
	} {
		if r, err := Join(context.Background(), ps, h, cfg); !errors.Is(err, ErrInvalidConfig) {
			if r != nil {
				_ = r.Close()
			}
			t.Errorf("Join(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// TestCloseLeavesNothing: rooms on real hosts comment, then close (twice);
// no goroutine of theirs is left, and the topic can be joined again.
func TestCloseLeavesNothing(t *testing.T) {
	hosts := []host.Host{newHost(t), newHost(t), newHost(t)}
	connect(t, hosts[0], hosts[1])
	connect(t, hosts[1], hosts[2])
	var pss []*pubsub.PubSub
	for _, h := range hosts {
		pss = append(pss, newPubSub(t, h))
	}
	time.Sleep(200 * time.Millisecond) // let identify settle before the snapshot (not an assertion)
	ignore := goleak.IgnoreCurrent()

	cfg := Config{Broadcast: "leak.test", Broadcaster: hosts[0].ID(), BeatInterval: 200 * time.Millisecond}
	var rooms []*Room
	for i, h := range hosts {
		r, err := Join(context.Background(), pss[i], h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, r)
	}
	sent := false
	waitFor(t, 20*time.Second, "a viewer's comment to arrive", func() bool {
		if !sent {
			_, err := rooms[2].Comment(context.Background(), "hi")
			sent = err == nil
		}
		for {
			select {
			case e := <-rooms[0].Events():
				if c, ok := e.(*Comment); ok && c.Author.Peer == hosts[2].ID() {
					return true
				}
			default:
				return false
			}
		}
	})
	for _, r := range rooms {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Comment(context.Background(), "after close"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Comment after Close: %v", err)
		}
	}
	goleak.VerifyNone(t, ignore)
	r, err := Join(context.Background(), pss[0], hosts[0], cfg)
	if err != nil {
		t.Fatalf("join again after Close: %v", err)
	}
	_ = r.Close()
}
