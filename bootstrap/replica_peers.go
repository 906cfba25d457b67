package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Replicas find each other. Several bootstrap processes on one PostgreSQL
// database serve one community (issue 16); each runs its own libp2p host,
// DHT server and relay, and those must form one DHT, or a node that joined
// through one replica would not find what a node on another announced.
// The database they already share is where they meet (migration 15,
// replicas):
//
//	every ReplicaEvery: upsert my row (peer ID, addresses, now)
//	                    read the rows seen within replicaTTL, not mine
//	                    for each: peerstore ◄─ its addresses; connect if not connected;
//	                              protect the connection from trimming; DHT routing table ◄─ it
//	                    delete the rows unseen for replicaTTL
//	on stop:            delete my row
//
// Their addresses are also in /api/v1/info (after this replica's own), so
// that a node can join through any of them.

// DefaultReplicaEvery is how often a replica beats and reads the others.
const DefaultReplicaEvery = 10 * time.Second

// replicaTTL is how long a replica unseen still counts (and its row
// stays): six beats missed at the default, a minute.
const replicaTTL = time.Minute

// replicaProtect tags the connections to replicas in the connection
// manager: trimming must not cut the DHT in two.
const replicaProtect = "peerscope-replica"

// replicaRow is a replica as its row says.
type replicaRow struct {
	peer  string
	addrs []string
}

func (s *Store) beatReplica(ctx context.Context, p string, addrs []string, now time.Time) error {
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO replicas (peer, addrs, seen) VALUES (?, ?, ?)
		ON CONFLICT (peer) DO UPDATE SET addrs = excluded.addrs, seen = excluded.seen`, p, string(b), now.UnixNano())
	if err != nil {
		return fmt.Errorf("bootstrap: replica heartbeat: %w", err)
	}
	return nil
}

// otherReplicas returns the replicas but p seen since since, and deletes
// the rows older.
func (s *Store) otherReplicas(ctx context.Context, p string, since time.Time) ([]replicaRow, error) {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM replicas WHERE seen < ?`, since.UnixNano()); err != nil {
		return nil, fmt.Errorf("bootstrap: prune replicas: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT peer, addrs FROM replicas WHERE peer <> ? AND seen >= ? ORDER BY peer`, p, since.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("bootstrap: read replicas: %w", err)
	}
	defer rows.Close()
	var out []replicaRow
	for rows.Next() {
		var r replicaRow
		var b string
		if err := rows.Scan(&r.peer, &b); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(b), &r.addrs); err != nil {
			continue // a row this version cannot read: not a replica it can reach
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) leaveReplicas(ctx context.Context, p string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM replicas WHERE peer = ?`, p)
	return err
}

// replicaSet keeps this replica's row fresh and its host joined to the
// others. run owns it; addrs is read by the info handler.
type replicaSet struct {
	st    *Store
	h     *Host
	every time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu     sync.Mutex
	others []peer.AddrInfo // as last read
}

// run beats and joins at once and then every r.every, until ctx ends; then
// it deletes this replica's row, so the others stop dialing it.
func (r *replicaSet) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		if err := r.round(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("replicas", "err", err)
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := r.st.leaveReplicas(lctx, r.h.ID().String()); err != nil {
				r.log.Warn("replica row not deleted", "err", err)
			}
			return
		case <-t.C:
		}
	}
}

// round is one beat: this replica's row written, the others read and
// joined.
func (r *replicaSet) round(ctx context.Context) error {
	self := r.h.ID()
	var mine []string
	for _, a := range r.h.Addrs() {
		mine = append(mine, a.String())
	}
	now := r.now()
	if err := r.st.beatReplica(ctx, self.String(), mine, now); err != nil {
		return err
	}
	rows, err := r.st.otherReplicas(ctx, self.String(), now.Add(-replicaTTL))
	if err != nil {
		return err
	}
	var others []peer.AddrInfo
	for _, row := range rows {
		info, ok := replicaInfo(row)
		if !ok {
			continue
		}
		others = append(others, info)
	}
	var wg sync.WaitGroup
	for _, info := range others {
		wg.Go(func() { r.join(ctx, info) })
	}
	wg.Wait()
	r.mu.Lock()
	gone := r.others
	r.others = others
	r.mu.Unlock()
	for _, old := range gone {
		if !slices.ContainsFunc(others, func(i peer.AddrInfo) bool { return i.ID == old.ID }) {
			r.h.h.ConnManager().Unprotect(old.ID, replicaProtect)
		}
	}
	return nil
}

// replicaInfo reads a row's peer and addresses: those that parse and name
// its peer.
func replicaInfo(row replicaRow) (peer.AddrInfo, bool) {
	id, err := peer.Decode(row.peer)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	info := peer.AddrInfo{ID: id}
	for _, s := range row.addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil || ai.ID != id {
			continue
		}
		info.Addrs = append(info.Addrs, ai.Addrs...)
	}
	return info, len(info.Addrs) > 0
}

// join connects the host to a replica if it is not connected, keeps the
// connection from being trimmed and puts the replica in the DHT's routing
// table.
func (r *replicaSet) join(ctx context.Context, info peer.AddrInfo) {
	h := r.h.h
	h.Peerstore().AddAddrs(info.ID, info.Addrs, 2*replicaTTL)
	if h.Network().Connectedness(info.ID) != network.Connected {
		cctx, cancel := context.WithTimeout(ctx, r.every)
		err := h.Connect(cctx, info)
		cancel()
		if err != nil {
			r.log.Info("replica unreachable", "replica", info.ID, "err", err)
			return
		}
	}
	h.ConnManager().Protect(info.ID, replicaProtect)
	if _, err := r.h.dht.RoutingTable().TryAddPeer(info.ID, true, false); err != nil {
		r.log.Info("replica not in the routing table", "replica", info.ID, "err", err)
	}
}

// addrs returns the other replicas' addresses, each ending in /p2p/<ID>,
// as last read.
func (r *replicaSet) addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, info := range r.others {
		as, _ := peer.AddrInfoToP2pAddrs(&info)
		for _, a := range as {
			out = append(out, a.String())
		}
	}
	return out
}
