package bootstrap

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Pruning: what the bootstrap no longer needs goes on a schedule
// (ServerConfig.PruneEvery, run by Service.Serve), so its tables hold what
// is current and not everything ever announced or asked: ended broadcasts
// once their replay is no longer listed, live ones whose node went quiet
// long ago, expired sessions, OAuth states, sign-ins, phone codes and the
// counters of ended windows, expired attestations and device keys,
// revocations of what has expired, nonces the skew no longer allows, and
// scheduled broadcasts (with their questions) a day after their start.
// A broadcast's roster, its members and its bundles go with it (the
// schema's ON DELETE CASCADE): 24 h after its end, when its replay does.

// DefaultPruneEvery is how often the bootstrap prunes.
const DefaultPruneEvery = 10 * time.Minute

// staleLive is how long after its last update a live broadcast whose node
// went quiet is forgotten (it left the live list after LiveTTL).
const staleLive = time.Hour

type pruneStep struct {
	table, query string
	args         []any
}

// Pruned counts the rows one Prune deleted, by table.
type Pruned map[string]int64

// Prune deletes what the bootstrap no longer needs at its clock's now.
func (s *Server) Prune(ctx context.Context) (Pruned, error) {
	now := s.cfg.Now()
	n := now.UnixNano()
	l := s.cfg.PhoneLimits
	window := int64(l.SendWindow)
	lowestNonce := s.nonces.bucket(now.Add(-s.cfg.ClockSkew)) - 1
	steps := []pruneStep{
		{"broadcasts", `DELETE FROM broadcasts WHERE ended != 0 AND ((replay != '' AND replay_expires <= ?) OR (replay = '' AND ended <= ?))`,
			[]any{n, now.Add(-s.cfg.ReplayTTL).UnixNano()}},
		{"broadcasts", `DELETE FROM broadcasts WHERE ended = 0 AND updated <= ?`, []any{now.Add(-staleLive).UnixNano()}},
		{"sessions", `DELETE FROM sessions WHERE expires <= ?`, []any{n}},
		{"oauth_states", `DELETE FROM oauth_states WHERE expires <= ?`, []any{n}},
		{"signins", `DELETE FROM signins WHERE expires <= ?`, []any{n}},
		{"signin_misses", `DELETE FROM signin_misses WHERE "window" <= ?`, []any{now.Add(-signinMissWindow).UnixNano()}},
		{"phone_codes", `DELETE FROM phone_codes WHERE window_start <= ? AND locked_until <= ? AND expires <= ?`, []any{n - window, n, n}},
		{"phone_numbers", `DELETE FROM phone_numbers WHERE window_start <= ? AND guarded_until <= ?`, []any{n - window, n}},
		{"attestations", `DELETE FROM attestations WHERE expires <= ?`, []any{n}},
		{"device_keys", `DELETE FROM device_keys WHERE expires <= ?`, []any{n}},
		{"revocations", `DELETE FROM revocations WHERE until <= ?`, []any{n}},
		{"nonces", `DELETE FROM nonces WHERE bucket < ?`, []any{lowestNonce}},
		// A scheduled broadcast, with its questions, a day after its start
		// (the broadcaster reads them while live).
		{"schedules", `DELETE FROM schedules WHERE starts <= ?`, []any{now.Add(-scheduleKept).UnixNano()}},
	}
	out := Pruned{}
	err := s.store.tx(ctx, func(tx *sql.Tx) error {
		// Replicas: one prunes at a time, the others skip their turn (two
		// transactions deleting the same rows could deadlock); the nonces
		// go under the lock group commits take to delete them too.
		if ok, err := s.store.tryLock(ctx, tx, "prune"); err != nil || !ok {
			return err
		}
		if ok, err := s.store.tryLock(ctx, tx, lockPruneNonces); err != nil {
			return err
		} else if !ok {
			steps = slices.DeleteFunc(steps, func(st pruneStep) bool { return st.table == "nonces" })
		}
		for _, st := range steps {
			res, err := tx.ExecContext(ctx, st.query, st.args...)
			if err != nil {
				return fmt.Errorf("%s: %w", st.table, err)
			}
			k, _ := res.RowsAffected()
			out[st.table] += k
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: prune: %w", err)
	}
	if out["broadcasts"] > 0 {
		s.listsChanged(ctx)
	}
	if out["revocations"] > 0 {
		s.trust.invalidate()
	}
	return out, nil
}

// pruneLoop prunes every PruneEvery until ctx ends.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p, err := s.Prune(ctx); err != nil {
			s.log.Warn("pruning", "err", err)
		} else {
			s.log.Info("pruned", "rows", p)
		}
	}
}
