package chat

import (
	"slices"
	"testing"
	"time"
)

// TestCommentsBeforeSync: a viewer that hears comments before it knows the
// moderation state passes none on, and shows those that pass once it
// knows it: not a blocked author's, not past heldFor, not one twice, at
// most maxHeld.
func TestCommentsBeforeSync(t *testing.T) {
	m := newTestMachine(viewerPeer, nil)
	hear := func(at time.Time, p testPeer, id uint64, text string) {
		t.Helper()
		e := commentEnv(at, id, text, nil)
		if _, res, err := m.check(at, p.id, p.id, e.mustEncode()); res != ignore || err != ErrNotReady {
			t.Fatalf("%s before the state: %v (%v), want ignored as not ready", text, res, err)
		}
	}
	hear(t0, alice, 1, "too old by then")
	at := t0.Add(heldFor / 2)
	hear(at, bob, 1, "from a blocked author")
	hear(at, carol, 1, "welcome")
	hear(at, carol, 1, "welcome") // the same comment by another path
	for i := range maxHeld {
		hear(at, mallory, uint64(10+i), "spam")
	}
	if got := m.takeReady().events; len(got) != 0 {
		t.Fatalf("%d events before the state", len(got))
	}

	// The beat says the state holds one action the viewer lacks: it asks,
	// and shows the held comments only once the state came.
	block := signed(broadcasterPeer, action{Op: OpBlock, Target: userOfPeer(bob.id), On: true, Seq: 10})
	var want machine
	want.regs = map[string]*signedAction{block.key(): block}
	now := t0.Add(heldFor + time.Second)
	b := env(now, envelope{Beat: &wireBeat{ModSeq: 10, Digest: want.stateDigest()}})
	e, res, err := m.check(now, broadcasterPeer.id, broadcasterPeer.id, b.mustEncode())
	if res != accept {
		t.Fatalf("beat: %v (%v)", res, err)
	}
	m.deliver(now, broadcasterPeer.id, broadcasterPeer.id, e)
	if m.synced || len(m.takeReady().events) != 0 {
		t.Fatal("synced, or showed comments, before the state came")
	}
	m.applyState(now, []*signedAction{block})
	if !m.synced {
		t.Fatal("not synced with the state")
	}
	var texts []string
	for _, ev := range m.takeReady().events {
		if c, ok := ev.(*Comment); ok {
			texts = append(texts, c.Text)
		}
	}
	// Carol's once; mallory's up to the room left after the first three
	// heard, and only as many as its rate lets through.
	if !slices.Contains(texts, "welcome") || slices.Contains(texts, "too old by then") || slices.Contains(texts, "from a blocked author") {
		t.Fatalf("shown: %q", texts)
	}
	n := map[string]int{}
	for _, s := range texts {
		n[s]++
	}
	if n["welcome"] != 1 || n["spam"] > maxHeld-4 || n["spam"] > m.cfg.Limits.Comment.Burst {
		t.Fatalf("shown %v (room for %d, rate burst %d)", n, maxHeld-4, m.cfg.Limits.Comment.Burst)
	}
	if len(m.held) != 0 {
		t.Fatalf("%d still held", len(m.held))
	}
}
