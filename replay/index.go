package replay

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The index is a bbolt file with three buckets: chunks (CID bytes → the
// chunk's record), broadcasts (ID → its end) and manifests (ID → the
// signed manifest). bbolt has no background goroutines and no compaction:
// pages freed by deletes are reused by later writes, so the file stays at
// its high-water mark (small: ~100 bytes a chunk) rather than shrinking.
var (
	bucketChunks    = []byte("chunks")
	bucketBcasts    = []byte("broadcasts")
	bucketManifests = []byte("manifests")
)

// openIndex opens the index; one that cannot be read (damaged by a crash
// of the machine) is moved aside and started afresh — the blocks it named
// are then removed as orphans: a replay lost, never one resurrected.
//
// Without sync, commits are not fsynced (bbolt's NoSync): a crash of the
// process loses nothing (the writes are in the page cache), a crash of the
// machine may lose the last records or damage the file. Either way no
// chunk outlives its expiry: a chunk whose record is lost becomes an orphan
// that Open deletes, a lost end makes chunks expire 24 h after their
// capture (earlier, never later), a damaged file is moved aside.
func openIndex(path string, sync bool, log *slog.Logger) (*bolt.DB, error) {
	open := func() (*bolt.DB, error) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: !sync, NoFreelistSync: true})
		if err != nil {
			return nil, err
		}
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketChunks, bucketBcasts, bucketManifests} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		return db, nil
	}
	db, err := open()
	if err == nil {
		return db, nil
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("replay: index %s is in use by another process: %w", path, err)
	}
	aside := path + ".damaged"
	log.Warn("the replay index cannot be read: starting a new one", "path", path, "err", err, "moved_to", aside)
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("replay: index: %w", err)
	}
	if db, err = open(); err != nil {
		return nil, fmt.Errorf("replay: index: %w", err)
	}
	return db, nil
}

func (s *Store) idxPut(bucket, key, val []byte) error {
	err := s.index.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, val) })
	if err != nil {
		return fmt.Errorf("replay: index: %w", err)
	}
	return nil
}

func (s *Store) idxDelete(bucket []byte, keys ...[]byte) error {
	if len(keys) == 0 {
		return nil
	}
	err := s.index.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay: index: %w", err)
	}
	return nil
}

// idxGet returns a copy of a value, or nil when there is none.
func (s *Store) idxGet(bucket, key []byte) ([]byte, error) {
	var out []byte
	err := s.index.View(func(tx *bolt.Tx) error {
		out = slices.Clone(tx.Bucket(bucket).Get(key))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay: index: %w", err)
	}
	return out, nil
}
