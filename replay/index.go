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
//	                uint64 size = 4; uint32 flags = 5; int64 received = 6;
//	                int64 segment = 7; uint64 offset = 8; uint32 format = 9; }
//	message Broadcast { int64 end = 1; }
//
// A record from before received was kept is read as received when loaded.
// format says where the block is: formatSegment, size bytes at offset in
// the segment file of (broadcast, segment: the hour of its anchor), or
// formatFlatfs (0, absent: a record of the store before segments), its own
// file under Dir/blocks, which Open moves into a segment (migrate).
const (
	formatFlatfs  = 0
	formatSegment = 1
)

// record is a chunk's index record as decoded.
type record struct {
	broadcast string
	e         entry // without b and seg
	format    int
	hour      int64 // the segment, with formatSegment
}

func marshalEntry(e *entry) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, e.b.id)
	vs := []uint64{e.seq, uint64(e.wall), uint64(e.size), uint64(e.flags), uint64(e.recv)}
	if e.seg != nil {
		vs = append(vs, uint64(e.seg.key.hour), uint64(e.off), formatSegment)
	}
	for i, v := range vs {
		b = protowire.AppendTag(b, protowire.Number(i+2), protowire.VarintType)
		b = protowire.AppendVarint(b, v)
	}
	return b
}

// maxOffset bounds a block's offset in its segment: far beyond an hour of
// any stream, and small enough that offset + size cannot overflow.
const maxOffset = 1 << 50

func unmarshalEntry(b []byte) (r record, err error) {
	var hour, off bool
	err = pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 9, 1); err != nil {
			return err
		}
		switch num {
		case 1:
			r.broadcast = string(raw)
		case 2:
			r.e.seq = v
		case 3:
			r.e.wall = int64(v)
		case 4:
			if v > MaxBlockSize {
				return fmt.Errorf("size %d", v)
			}
			r.e.size = int(v)
		case 5:
			r.e.flags = chunk.Flags(v)
		case 6:
			r.e.recv = int64(v)
		case 7:
			r.hour, hour = int64(v), true
		case 8:
			if v > maxOffset {
				return fmt.Errorf("offset %d", v)
			}
			r.e.off, off = int64(v), true
		case 9:
			if v != formatFlatfs && v != formatSegment {
				return fmt.Errorf("format %d", v)
			}
			r.format = int(v)
		}
		return nil
	})
	switch {
	case err != nil:
	case r.broadcast == "" || len(r.broadcast) > maxBroadcastLen:
		err = errors.New("no broadcast")
	case r.format == formatSegment && (!hour || !off):
		err = errors.New("a segment record without its segment or offset")
	}
	return r, err
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
			r, err2 := unmarshalEntry(v)
			if err1 != nil || err2 != nil {
				bad = append(bad, slices.Clone(k))
				return nil
			}
			e := r.e
			e.b = s.bcast(r.broadcast)
			if e.recv == 0 || e.recv > now {
				e.recv = now
			}
			if r.format == formatSegment {
				e.seg = s.segment(segKey{r.broadcast, r.hour})
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
