package bootstrap

import (
	"context"
	"encoding/json"
	"testing"

	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestNotesStaySmall: an invitation of many accounts is split into
// notices PostgreSQL takes (under its 8000-byte payload), every account
// in exactly one; other events are one notice of their IDs.
func TestNotesStaySmall(t *testing.T) {
	l := &api.Listing{ID: "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5.a-broadcast-nonce-of-some-length"}
	e := Event{Kind: EventInvited, Listing: l, followerIDs: map[int64]bool{}, private: true}
	for i := range int64(1000) {
		e.followerIDs[1<<62+i] = true
	}
	seen := map[int64]int{}
	notes := notesOf("0123456789abcdef", e)
	for _, n := range notes {
		b, _ := json.Marshal(n)
		if len(b) > maxNoticePayload {
			t.Fatalf("a notice of %d bytes", len(b))
		}
		for _, a := range n.Accounts {
			seen[a]++
		}
	}
	if len(notes) != 5 || len(seen) != 1000 {
		t.Fatalf("%d notices, %d accounts", len(notes), len(seen))
	}
	for a, k := range seen {
		if k != 1 {
			t.Fatalf("account %d in %d notices", a, k)
		}
	}
	n := notesOf("o", Event{Kind: EventUpdate, Listing: l, countsOnly: true})
	if len(n) != 1 || n[0].Broadcast != l.ID || !n[0].CountsOnly {
		t.Fatalf("update: %+v", n)
	}
	n = notesOf("o", Event{Kind: EventScheduled, Schedule: &api.Scheduled{ID: 7}})
	if len(n) != 1 || n[0].Schedule != 7 || n[0].Full {
		t.Fatalf("a schedule by its ID alone: %+v", n)
	}
}

// TestReplicasCloseLeavesNothing: a PostgreSQL server's listener and
// notifier stop with Close (twice is fine), their connections closed.
func TestReplicasCloseLeavesNothing(t *testing.T) {
	if pgtest.Skipped() {
		t.Skip("PostgreSQL tests skipped")
	}
	db := pgtest.DB(t) // the first starts pgtest's own connections
	ignore := goleak.IgnoreCurrent()
	st, err := OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyRing(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Store: st, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	// Something to send, so the notifier has a connection to close.
	s.listsChanged(context.Background())
	s.Close()
	s.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}
