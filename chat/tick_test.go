package chat

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
)

// timers is what a tick may change in a machine, beside its bookkeeping
// (lastTick, sweepDue), and what it has made ready so far.
type timers struct {
	Viewers                         map[string]time.Time
	Seen                            map[string]time.Time
	Closed                          map[uint64]bool
	CallFor, Early                  int
	PendingHearts, PresenceBeats    int
	Joined, Synced                  bool
	PresenceDue, LastFetch, Flushed time.Time
	Started, LastBeat               time.Time
	Recoveries                      int
	Hearts                          uint64
	Events, Publish, Fetch, Taps    int
}

func timersOf(m *machine) timers {
	t := timers{
		Viewers: map[string]time.Time{}, Seen: map[string]time.Time{}, Closed: map[uint64]bool{},
		CallFor: len(m.callFor), Early: len(m.early),
		PendingHearts: m.pendingHearts, PresenceBeats: m.presenceBeats,
		Joined: m.joined, Synced: m.synced,
		PresenceDue: m.presenceDue, LastFetch: m.lastFetch, Flushed: m.lastHeartFlush,
		Started: m.started, LastBeat: m.lastBeatSent, Recoveries: m.recoveries, Hearts: m.hearts,
		Events: len(m.rd.events), Publish: len(m.rd.publish), Fetch: len(m.rd.fetch), Taps: len(m.rd.taps),
	}
	for p, v := range m.viewers {
		t.Viewers[string(p)] = v.last
	}
	for p, at := range m.seen {
		t.Seen[string(p)] = at
	}
	for seq, c := range m.calls {
		t.Closed[seq] = c.closed
	}
	return t
}

// tick ticks m at the swarm's now, and holds the machine to nextTick's
// promise, as the mesh's scenario tests do: a tick before the time it
// said changes nothing, and the inputs since the last tick lowered its
// bound on the expiries as far as they needed.
func (s *swarm) tick(m *machine) {
	s.t.Helper()
	// The expiries' bound, lowered as entries came since the last tick,
	// is no later than a pass over them finds.
	if exact := m.nextSweep(m.presenceEvery()); exact.Before(m.sweepDue) {
		s.t.Fatalf("%s: next sweep kept as %v, a pass finds %v", m.cfg.self, m.sweepDue, exact)
	}
	due := m.nextTick()
	if !s.now.Before(due) {
		m.tick(s.now, tickInput{hearts: s.treeHearts})
		return
	}
	before := timersOf(m)
	m.tick(s.now, tickInput{hearts: s.treeHearts})
	if after := timersOf(m); !reflect.DeepEqual(before, after) {
		s.t.Fatalf("%s: a tick %v before nextTick (%v) changed its timers:\nbefore %+v\nafter  %+v",
			m.cfg.self, due.Sub(s.now), due, before, after)
	}
}

// TestNextTick: what a viewer's machine says is due, and that a synced
// viewer with nothing pending has nothing due at all.
func TestNextTick(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, bob: nil, alice: attestation(alice.id, "alice", bootKey)})
	s.advance(2 * time.Second)
	bm, am := s.ms[bob.id], s.ms[alice.id]
	if !bm.synced || !am.synced {
		t.Fatal("not synced")
	}
	if got := s.ms[broadcasterPeer.id].nextTick(); !got.IsZero() {
		t.Fatalf("the broadcaster's next tick = %v, want always due (it reads its tree)", got)
	}
	// Bob heard alice's presence: she expires from his viewers after
	// three presence intervals, and leaves his jury pool after ten minutes.
	heardAlice := bm.seen[alice.id]
	if want := heardAlice.Add(presenceMisses*minPresence + 1); !bm.nextTick().Equal(want) {
		t.Fatalf("bob's next tick = %v, want %v (alice's presence expiring)", bm.nextTick(), want)
	}
	// Alice's next presence is her next timer.
	if got := am.nextTick(); !got.Equal(am.presenceDue) {
		t.Fatalf("alice's next tick = %v, want her presence at %v", got, am.presenceDue)
	}

	// A viewer that has heard nobody: nothing due, ever.
	s = newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, bob: nil})
	s.advance(2 * time.Second)
	bm = s.ms[bob.id]
	if got := bm.nextTick(); !got.Equal(farFuture) {
		t.Fatalf("an idle synced viewer's next tick = %v, want never", got)
	}
	// Taps outside a tree: the flush, a heart interval after the last.
	bm.heart(s.now, 3, time.Time{})
	if got, want := bm.nextTick(), bm.lastHeartFlush.Add(minHeart); !got.Equal(want) {
		t.Fatalf("with taps pending, next tick = %v, want %v", got, want)
	}
	s.advance(minHeart)
	if bm.pendingHearts != 0 {
		t.Fatal("taps not flushed")
	}
	// His own heart message, delivered to him as to everyone, put him in
	// his own jury pool: that expiry is all that is due.
	if got, want := bm.nextTick(), bm.seen[bob.id].Add(juryPoolAge+1); !got.Equal(want) {
		t.Fatalf("after the flush, next tick = %v, want %v", got, want)
	}
}

// TestNextTickNoBusyLoop: a signed-in viewer whose attestation expired sends
// no presence, and its machine does not say presence is due (the room would
// tick at its floor for nothing).
func TestNextTickNoBusyLoop(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: attestation(alice.id, "alice", bootKey)})
	s.advance(2 * time.Second)
	s.advance(25 * time.Hour) // attestation(): valid a day from t0
	am := s.ms[alice.id]
	if due := am.nextTick(); !due.After(s.now) {
		t.Fatalf("alice, attestation expired, is due %v ago", s.now.Sub(due))
	}
}

// TestIdleRoomSleeps: a viewer's room with nothing due makes no wake-ups.
// Before, it ticked every 250 ms whatever was due: 240 wake-ups in this
// minute. This viewer has heard no beat (there is no broadcaster), so its
// only timer is the request for the state, every ten seconds.
func TestIdleRoomSleeps(t *testing.T) {
	clk := testutil.NewStepClock(t0)
	h := newHost(t)
	ps := newPubSub(t, h)
	room, err := Join(context.Background(), ps, h, Config{
		Broadcast: testBroadcast, Broadcaster: broadcasterPeer.id, Trusted: trusted, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer room.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := room.Moderation(ctx); err != nil { // the owner has armed its ticker
		t.Fatal(err)
	}
	wakes := 0
	for range 240 {
		wakes += clk.Advance(t, 250*time.Millisecond)
	}
	t.Logf("%d wake-ups in a minute", wakes)
	if wakes < 5 || wakes > 7 {
		t.Fatalf("the room woke %d times in a minute, want one per state request (every %v)", wakes, 5*fetchBackoff)
	}
}
