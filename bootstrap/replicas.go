package bootstrap

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Replicas: several bootstrap processes on one PostgreSQL database. Each
// process writes through its one writer connection, so its own
// transactions never interleave (on SQLite that is the whole story: one
// process, one writer). Two processes' can, and PostgreSQL's READ
// COMMITTED lets a transaction act on what it read before the other
// committed: a counter's update lost, a cap passed once per replica, a
// code redeemed twice, an older version written over a newer.
//
// The store's read-modify-write transactions therefore name what they
// read and then write (a broadcast, an account's live listings, a phone
// number, a peer's sign-ins, a roster…) and take, first thing, a
// transaction-scoped advisory lock per name (lockKeys). Two replicas'
// transactions on one name run one after the other; the second, its
// statements reading afresh under READ COMMITTED, sees what the first
// committed. Names that differ do not wait on each other. A lock rather than SELECT … FOR
// UPDATE because what most of these transactions count has no row to
// lock yet (the caps count rows that are about to be inserted, a first
// sign-in miss has no counter row); rather than SERIALIZABLE because that
// would make every caller retry.

// lockKeys takes, on PostgreSQL, the advisory lock of each key for the
// rest of tx (pg_advisory_xact_lock on a 64-bit hash of the key; a
// collision only makes two names wait on each other). One statement for
// all, in the order of their hashes, so that two transactions cannot each
// hold a lock the other waits for; callers take them before any other
// lock (a row's, a nonce's). On SQLite it does nothing: its write
// transactions are serialised already.
func (s *Store) lockKeys(ctx context.Context, tx *sql.Tx, keys ...string) error {
	if s.dialect != dialectPostgres || len(keys) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		sum := sha256.Sum256([]byte(k))
		ids = append(ids, int64(binary.BigEndian.Uint64(sum[:8])))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// A VALUES list is scanned in its order, and the function is called
	// for each row as it comes.
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(k) FROM (VALUES `+
		strings.Repeat(`(?::bigint), `, len(ids)-1)+`(?::bigint)) AS v(k)`, args...)
	return err
}

// tryLock takes, on PostgreSQL, key's advisory lock for the rest of tx if
// no other transaction holds it, and says whether it did (on SQLite it
// does, always). For housekeeping one replica at a time may do and the
// others may skip: it never waits, so it takes no part in a deadlock.
func (s *Store) tryLock(ctx context.Context, tx *sql.Tx, key string) (bool, error) {
	if s.dialect != dialectPostgres {
		return true, nil
	}
	sum := sha256.Sum256([]byte(key))
	var ok bool
	err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock(?::bigint)`, int64(binary.BigEndian.Uint64(sum[:8]))).Scan(&ok)
	return ok, err
}

// lockName names what a transaction locks: a kind and its key.
func lockName(kind string, key any) string { return fmt.Sprintf("%s\x00%v", kind, key) }

// txLocked is tx whose transaction first takes the locks of keys.
func (s *Store) txLocked(ctx context.Context, keys []string, f func(*sql.Tx) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockKeys(ctx, tx, keys...); err != nil {
			return err
		}
		return f(tx)
	})
}
