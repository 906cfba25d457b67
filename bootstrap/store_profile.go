package bootstrap

import (
	"context"
	"fmt"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// followCounts returns how many accounts follow key and how many account
// follows (both by index: follows_followee, and the primary key).
func (s *Store) followCounts(ctx context.Context, key string, account int64) (followers, following int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM follows WHERE followee = ?), (SELECT COUNT(*) FROM follows WHERE follower = ?)`,
		key, account).Scan(&followers, &following)
	if err != nil {
		return 0, 0, fmt.Errorf("bootstrap: follow counts: %w", err)
	}
	return followers, following, nil
}

// broadcastsOf returns one broadcaster's public entries, newest first:
// live ones (announced or updated within liveTTL of now), or ended ones
// with a replay not yet expired.
func (s *Store) broadcastsOf(ctx context.Context, of broadcaster, replays bool, now time.Time, liveTTL time.Duration, limit int) ([]*api.Listing, error) {
	where := `b.private = 0 AND b.ended = 0 AND b.updated > ?`
	args := []any{now.Add(-liveTTL).UnixNano()}
	if replays {
		where = `b.private = 0 AND b.ended != 0 AND b.replay != '' AND b.replay_expires > ?`
		args = []any{now.UnixNano()}
	}
	if of.account != 0 {
		where += ` AND b.account = ?`
		args = append(args, of.account)
	} else {
		where += ` AND b.account IS NULL AND b.broadcaster = ?`
		args = append(args, of.peer)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+broadcastColumns+` FROM broadcasts b LEFT JOIN accounts a ON a.id = b.account
WHERE `+where+` ORDER BY b.started DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: broadcasts of: %w", err)
	}
	defer rows.Close()
	out := []*api.Listing{}
	for rows.Next() {
		b, err := scanBroadcast(rows)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: broadcasts of: %w", err)
		}
		out = append(out, &b.Listing)
	}
	return out, rows.Err()
}
