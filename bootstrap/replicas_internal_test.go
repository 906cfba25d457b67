package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// twoStores opens two Stores on one fresh PostgreSQL database: two
// replicas' connections, each with its own writer, so their transactions
// really run at once.
func twoStores(t *testing.T) [2]*Store {
	t.Helper()
	if pgtest.Skipped() {
		t.Skipf("PostgreSQL tests skipped (%s=1)", pgtest.SkipEnv)
	}
	db := pgtest.DB(t)
	var out [2]*Store
	for i := range out {
		st, err := OpenStore(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out[i] = st
	}
	return out
}

// together runs f(i) for i in [0, n) on n goroutines released at once, and
// waits for them all.
func together(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// replicaRounds is how many times each race is run: one round may well
// not interleave, dozens did every time before the fix.
const replicaRounds = 30

var replicaT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func replicaAccount(t *testing.T, st *Store, subject string) int64 {
	t.Helper()
	a, err := st.UpsertAccount(context.Background(), Account{Account: api.Account{Provider: "twitter", Subject: subject, Handle: "@" + subject}}, replicaT0)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func replicaEntry(id string, account int64, version uint64) *entry {
	return &entry{Listing: api.Listing{ID: id, Broadcaster: "12D3KooWreplica", Title: fmt.Sprintf("v%d", version), Link: "peerscope://" + id,
		Started: replicaT0, Version: version, Updated: replicaT0.Add(time.Duration(version) * time.Millisecond)}, account: account, network: "net", signed: []byte("signed")}
}

// TestReplicasAnnouncementVersion: two replicas store announcements of one
// broadcast at once, the newer on one and the older on the other: the
// newer is what stays, whichever commits first.
func TestReplicasAnnouncementVersion(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	acc := replicaAccount(t, st[0], "100")
	lost := 0
	for round := range replicaRounds {
		id := fmt.Sprintf("12D3KooWreplica.v%d", round)
		if _, err := st[0].putBroadcast(ctx, replicaEntry(id, acc, 1)); err != nil {
			t.Fatal(err)
		}
		together(2, func(i int) {
			// Replica i stores version 2+i; which one is older alternates.
			_, err := st[(i+round)%2].putBroadcast(ctx, replicaEntry(id, acc, uint64(2+i)))
			if err != nil && (i == 1 || !errors.Is(err, ErrStale)) {
				t.Errorf("round %d: version %d: %v", round, 2+i, err)
			}
		})
		var v uint64
		if err := st[1].r.QueryRowContext(ctx, `SELECT version FROM broadcasts WHERE id = ?`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != 3 {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("the older announcement overwrote the newer in %d of %d rounds", lost, replicaRounds)
	}
}

// TestReplicasLiveCap: an account allowed one live listing announces two
// broadcasts at once, one through each replica: one is listed.
func TestReplicasLiveCap(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	over := 0
	for round := range replicaRounds {
		acc := replicaAccount(t, st[0], fmt.Sprint(1000+round))
		var listed atomic.Int32
		together(4, func(i int) {
			e := replicaEntry(fmt.Sprintf("12D3KooWreplica.cap%d-%d", round, i), acc, 1)
			e.capLive, e.liveSince = 1, replicaT0.Add(-time.Hour).UnixNano()
			_, err := st[i%2].putBroadcast(ctx, e)
			switch {
			case err == nil:
				listed.Add(1)
			case !errors.Is(err, ErrRateLimited):
				t.Errorf("round %d: %v", round, err)
			}
		})
		if listed.Load() != 1 {
			over++
		}
	}
	if over > 0 {
		t.Fatalf("not one live listing of the account in %d of %d rounds", over, replicaRounds)
	}
}

// TestReplicasScheduleCap: the cap on an account's upcoming schedules
// holds when replicas add them at once.
func TestReplicasScheduleCap(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	over := 0
	for round := range replicaRounds {
		acc := replicaAccount(t, st[0], fmt.Sprint(2000+round))
		var added atomic.Int32
		together(4, func(i int) {
			_, err := st[i%2].addSchedule(ctx, acc, api.ScheduleRequest{Title: "soon", Starts: replicaT0.Add(48 * time.Hour)}, 2, replicaT0)
			switch {
			case err == nil:
				added.Add(1)
			case !errors.Is(err, ErrRateLimited):
				t.Errorf("round %d: %v", round, err)
			}
		})
		if added.Load() != 2 {
			over++
		}
	}
	if over > 0 {
		t.Fatalf("not 2 schedules (the cap) in %d of %d rounds", over, replicaRounds)
	}
}

// TestReplicasSignInOnce: a node's sign-in code sent to two replicas at
// once is redeemed once.
func TestReplicasSignInOnce(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	acc := replicaAccount(t, st[0], "100")
	equal := func(a, b []byte) bool { return string(a) == string(b) }
	twice := 0
	for round := range replicaRounds {
		peer := fmt.Sprintf("12D3KooWpeer%d", round)
		code := []byte(fmt.Sprintf("code-%d", round))
		if err := st[0].putSignIn(ctx, peer, code, acc, "", replicaT0, replicaT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var taken atomic.Int32
		together(2, func(i int) {
			got, _, err := st[i].takeSignIn(ctx, peer, code, replicaT0, equal)
			switch {
			case err == nil && got == acc:
				taken.Add(1)
			case err != nil && !errors.Is(err, ErrCodeInvalid):
				t.Errorf("round %d: %v", round, err)
			}
		})
		if taken.Load() != 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Fatalf("the code was not redeemed exactly once in %d of %d rounds", twice, replicaRounds)
	}
}

// TestReplicasPhoneCounters: the per-number counters (codes sent, wrong
// codes tried) count every request when replicas take them at once: a
// lost update would give a guesser attempts for free.
func TestReplicasPhoneCounters(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	l := PhoneLimits{MaxAttempts: 100, MaxNumberAttempts: 100, MaxSends: 100, MaxNumberSends: 100}
	l.fill()
	newCode := func(bool) (string, []byte, error) { return "123456", []byte("right"), nil }
	equal := func(a, b []byte) bool { return string(a) == string(b) }
	const peers = 4
	lost := 0
	for round := range replicaRounds {
		phone := fmt.Sprintf("+1555%04d", round)
		together(peers, func(i int) {
			if _, err := st[i%2].beginPhone(ctx, phone, fmt.Sprint("peer", i), replicaT0, l, newCode); err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		})
		together(peers, func(i int) {
			if err := st[i%2].checkPhone(ctx, phone, fmt.Sprint("peer", i), []byte("wrong"), replicaT0, l, equal); !errors.Is(err, ErrCodeInvalid) {
				t.Errorf("round %d: a wrong code: %v", round, err)
			}
		})
		var sends, wrong int
		if err := st[0].r.QueryRowContext(ctx, `SELECT sends, wrong FROM phone_numbers WHERE phone = ?`, phone).Scan(&sends, &wrong); err != nil {
			t.Fatal(err)
		}
		if sends != peers || wrong != peers {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("the number's counters lost a send or a wrong code in %d of %d rounds", lost, replicaRounds)
	}
}

// TestReplicasPruneOneAtATime: while one replica prunes, another's turn
// is skipped rather than run alongside (two deletes of the same rows
// could deadlock); the next turn prunes.
func TestReplicasPruneOneAtATime(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	keys, err := LoadKeyRing(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Store: st[1], Keys: keys, Now: func() time.Time { return replicaT0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := st[0].putOAuthState(ctx, oauthState{State: "expired", Peer: "p", Created: replicaT0.Add(-20 * time.Minute), Expires: replicaT0.Add(-10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// Replica 0 is pruning: it holds the lock in an open transaction.
	tx, err := st[0].w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st[0].tryLock(ctx, tx, "prune"); !ok || err != nil {
		t.Fatalf("replica 0's lock: %v %v", ok, err)
	}
	if p, err := s.Prune(ctx); err != nil || p["oauth_states"] != 0 {
		t.Fatalf("replica 1 pruned alongside: %v %v", p, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Prune(ctx); err != nil || p["oauth_states"] != 1 {
		t.Fatalf("replica 1's next turn: %v %v", p, err)
	}
}

// TestReplicasRemindOnce: every replica runs the reminder loop; a step
// falling due is taken, and so sent, by one of them only.
func TestReplicasRemindOnce(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	twice := 0
	for round := range replicaRounds {
		acc := replicaAccount(t, st[0], fmt.Sprint(3000+round))
		// Scheduled a week and a minute ahead: the week's reminder falls
		// due a minute later.
		if _, err := st[0].addSchedule(ctx, acc, api.ScheduleRequest{Title: "soon", Starts: replicaT0.Add(7*24*time.Hour + time.Minute),
			Reminders: []string{api.StepWeek}}, 5, replicaT0); err != nil {
			t.Fatal(err)
		}
		var taken atomic.Int32
		together(2, func(i int) {
			due, err := st[i].takeReminders(ctx, replicaT0.Add(time.Minute))
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
			taken.Add(int32(len(due)))
		})
		if taken.Load() != 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Fatalf("the due reminder was not taken exactly once in %d of %d rounds", twice, replicaRounds)
	}
}

// TestReplicasGroupCap: an account one group short of the cap saves four
// at once through two replicas: one more is saved.
func TestReplicasGroupCap(t *testing.T) {
	st := twoStores(t)
	ctx := context.Background()
	over := 0
	for round := range replicaRounds / 3 {
		acc := replicaAccount(t, st[0], fmt.Sprint(4000+round))
		for i := range api.MaxGroups - 1 {
			if err := st[0].putGroup(ctx, acc, api.Group{Name: fmt.Sprint("g", i)}, replicaT0); err != nil {
				t.Fatal(err)
			}
		}
		together(4, func(i int) {
			err := st[i%2].putGroup(ctx, acc, api.Group{Name: fmt.Sprint("new", i)}, replicaT0)
			if err != nil && !errors.Is(err, ErrRateLimited) {
				t.Errorf("round %d: %v", round, err)
			}
		})
		var n int
		if err := st[1].r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audience_groups WHERE account = ?`, acc).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != api.MaxGroups {
			over++
		}
	}
	if over > 0 {
		t.Fatalf("not %d groups (the cap) in %d of %d rounds", api.MaxGroups, over, replicaRounds/3)
	}
}
