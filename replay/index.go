package replay

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
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

// The index records (protobuf):
//
//	message Chunk { string broadcast = 1; uint64 seq = 2; int64 wallclock = 3;
//	                uint64 size = 4; uint32 flags = 5; int64 received = 6; }
//	message Broadcast { int64 end = 1; }
//
// A record from before received was kept is read as received when loaded.

func marshalEntry(e *entry) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, e.b.id)
	for i, v := range []uint64{e.seq, uint64(e.wall), uint64(e.size), uint64(e.flags), uint64(e.recv)} {
		b = protowire.AppendTag(b, protowire.Number(i+2), protowire.VarintType)
		b = protowire.AppendVarint(b, v)
	}
	return b
}

func unmarshalEntry(b []byte) (id string, e entry, err error) {
	err = pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 6, 1); err != nil {
			return err
		}
		switch num {
		case 1:
			id = string(raw)
		case 2:
			e.seq = v
		case 3:
			e.wall = int64(v)
		case 4:
			if v > MaxBlockSize {
				return fmt.Errorf("size %d", v)
			}
			e.size = int(v)
		case 5:
			e.flags = chunk.Flags(v)
		case 6:
			e.recv = int64(v)
		}
		return nil
	})
	if err == nil && (id == "" || len(id) > maxBroadcastLen) {
		err = errors.New("no broadcast")
	}
	return id, e, err
}

func marshalBcast(b *bcast) []byte {
	out := protowire.AppendTag(nil, 1, protowire.VarintType)
	return protowire.AppendVarint(out, uint64(b.end))
}

// load reads the index into memory. Times claimed past now (an end, or a
// chunk recorded before its receipt was) are taken as now: what a store
// kept before it anchored times to its own clock gets 24 hours from now at
// most.
func (s *Store) load() error {
	var bad [][]byte
	now := s.now()
	err := s.index.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketBcasts).ForEach(func(k, v []byte) error {
			b := s.bcast(string(k))
			_ = pbwire.EachField(v, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == 1 && typ == protowire.VarintType {
					b.end = min(int64(v), now)
				}
				return nil
			})
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketManifests).ForEach(func(k, _ []byte) error {
			s.bcast(string(k)).man = true
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketChunks).ForEach(func(k, v []byte) error {
			c, err1 := cid.Cast(k)
			id, e, err2 := unmarshalEntry(v)
			if err1 != nil || err2 != nil {
				bad = append(bad, slices.Clone(k))
				return nil
			}
			e.b = s.bcast(id)
			if e.recv == 0 || e.recv > now {
				e.recv = now
			}
			s.add(c, &e)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("replay: index: %w", err)
	}
	if len(bad) > 0 {
		s.log.Warn("dropping unreadable index records", "records", len(bad))
		return s.idxDelete(bucketChunks, bad...)
	}
	return nil
}
