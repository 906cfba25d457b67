package replay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// migrate moves the blocks of a store kept by the flatfs code (one file per
// block under Dir/blocks, records without a segment) into segment files, at
// Open (not shared yet). Each unexpired block the index knows that still
// hashes to its CID is appended to its segment; then all the records are
// rewritten in one transaction, and then Dir/blocks is removed. A crash
// before the transaction leaves the old records and files as they were
// (the segment files written are orphans that the next Open removes before
// it migrates again); after it, only Dir/blocks is left to remove. Records
// whose blocks are missing, damaged or expired are dropped, as are files
// the index does not know.
func (s *Store) migrate() error {
	var old []victim
	for id, e := range s.chunks {
		if e.seg == nil {
			old = append(old, victim{id: id})
		}
	}
	dir := filepath.Join(s.cfg.Dir, "blocks")
	_, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if len(old) > 0 {
			s.log.Warn("dropping index records of flatfs blocks: no Dir/blocks", "records", len(old))
			for _, v := range old {
				s.drop(v.id, s.chunks[v.id])
			}
			return s.idxDelete(bucketChunks, victimKeys(old)...)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay: migrate: %w", err)
	}
	files := map[string]string{} // block name → path
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".data") {
			files[strings.TrimSuffix(d.Name(), ".data")] = p
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("replay: migrate: %w", err)
	}
	now := s.now()
	type moved struct {
		key, rec []byte
	}
	var recs []moved
	var dropped [][]byte
	segs := map[*segment]bool{}
	for _, v := range old {
		e := s.chunks[v.id]
		b, err := os.ReadFile(files[blockName(v.id)])
		if err != nil || len(b) != e.size || !checkCID(v.id, b) || s.expiry(e.b, e) <= now {
			s.drop(v.id, e)
			dropped = append(dropped, v.id.Bytes())
			continue
		}
		g := s.segment(segKey{e.b.id, hourOf(e.anchor())})
		f, err := s.acquire(g, true)
		if err != nil {
			return fmt.Errorf("replay: migrate: %w", err)
		}
		_, err = f.WriteAt(b, g.end)
		s.release(g)
		if err != nil {
			return fmt.Errorf("replay: migrate: %w", err)
		}
		segs[g] = true
		e.seg, e.off = g, g.end
		g.end += int64(len(b))
		g.refs++
		recs = append(recs, moved{v.id.Bytes(), marshalEntry(e)})
	}
	if s.cfg.Sync {
		for g := range segs {
			f, err := s.acquire(g, false)
			if err == nil {
				err = f.Sync()
				s.release(g)
			}
			if err != nil {
				return fmt.Errorf("replay: migrate: %w", err)
			}
		}
	}
	err = s.index.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketChunks)
		for _, m := range recs {
			if err := bk.Put(m.key, m.rec); err != nil {
				return err
			}
		}
		for _, k := range dropped {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay: migrate: index: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replay: migrate: %w", err)
	}
	s.log.Info("moved the replay store's block files into segments", "blocks", len(recs), "dropped", len(dropped), "files", len(files))
	return nil
}
