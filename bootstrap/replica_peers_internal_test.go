package bootstrap

import (
	"context"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestReplicaRows (PostgreSQL): a replica reads the others' rows seen
// within replicaTTL, never its own; a row unseen for longer is ignored and
// deleted; a replica's last beat replaces its addresses; leaving deletes
// its row.
func TestReplicaRows(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(ctx, pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	beat := func(p string, at time.Time, addrs ...string) {
		t.Helper()
		if err := st.beatReplica(ctx, p, addrs, at); err != nil {
			t.Fatal(err)
		}
	}
	beat("me", now, "/ip4/127.0.0.1/tcp/1/p2p/me")
	beat("fresh", now.Add(-replicaTTL+time.Second), "/ip4/127.0.0.1/tcp/2")
	beat("fresh", now.Add(-time.Second), "/ip4/127.0.0.1/tcp/3")
	beat("stale", now.Add(-replicaTTL-time.Second), "/ip4/127.0.0.1/tcp/4")
	rows, err := st.otherReplicas(ctx, "me", now.Add(-replicaTTL))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].peer != "fresh" || len(rows[0].addrs) != 1 || rows[0].addrs[0] != "/ip4/127.0.0.1/tcp/3" {
		t.Fatalf("others: %+v", rows)
	}
	var n int
	if err := st.r.QueryRowContext(ctx, `SELECT count(*) FROM replicas`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows after the read (%v): the stale one kept", n, err)
	}
	if err := st.leaveReplicas(ctx, "fresh"); err != nil {
		t.Fatal(err)
	}
	if rows, err := st.otherReplicas(ctx, "me", now.Add(-replicaTTL)); err != nil || len(rows) != 0 {
		t.Fatalf("after it left: %+v %v", rows, err)
	}
}

// TestReplicaInfo: of a row's addresses, those that parse and name its
// own peer are dialed; a row with none is no replica to join.
func TestReplicaInfo(t *testing.T) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	const other = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	info, ok := replicaInfo(replicaRow{peer: id, addrs: []string{
		"/ip4/10.0.0.1/tcp/4001/p2p/" + id, "/ip4/10.0.0.2/tcp/4001/p2p/" + other, "not an address", "/ip4/10.0.0.3/tcp/4001",
	}})
	if !ok || info.ID.String() != id || len(info.Addrs) != 1 || info.Addrs[0].String() != "/ip4/10.0.0.1/tcp/4001" {
		t.Fatalf("%v %v", info, ok)
	}
	if _, ok := replicaInfo(replicaRow{peer: "x", addrs: []string{"/ip4/10.0.0.1/tcp/4001/p2p/" + id}}); ok {
		t.Fatal("a row with a bad peer ID")
	}
	if _, ok := replicaInfo(replicaRow{peer: id, addrs: []string{"/ip4/10.0.0.2/tcp/4001/p2p/" + other}}); ok {
		t.Fatal("a row whose addresses are another peer's")
	}
}
