package replay

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Blocks are kept in segment files: Dir/segments/<broadcast>-<hour>.seg,
// one per broadcast per hour of anchor time (entry.anchor), each block
// appended and found by the offset and length its index record keeps. A
// chunk is thus a write into a file that is already open, not a new file:
// flatfs's file per block (a temporary file created, written, renamed) cost
// an inode allocation per chunk, 20 % of a relaying viewer's CPU samples.
//
// A segment's chunks expire within its hour of each other (together once
// the broadcast's end is known), so a segment is deleted, one unlink, when
// its last entry is dropped; a chunk dropped before the rest of its segment
// (expired first, found corrupt) has its range punched out of the file
// (punch_linux.go), so its disk space comes back at the sweep too.

// segmentSpan is the anchor time one segment covers: a broadcast live for
// 24 hours frees its first hours' bytes on time, not at its end.
const segmentSpan = int64(time.Hour)

// maxOpenSegments bounds the files kept open for segments; beyond it the
// least recently used idle one is closed. A node writes to one segment per
// broadcast it keeps; a replay being fetched can write to a few at once.
const maxOpenSegments = 8

// segKey names a segment: a broadcast and an hour of anchor time.
type segKey struct {
	bcast string
	hour  int64 // floor(anchor / segmentSpan)
}

func hourOf(anchor int64) int64 {
	h := anchor / segmentSpan
	if anchor < 0 && anchor%segmentSpan != 0 {
		h--
	}
	return h
}

// segment is one segment file. Every field is under Store.mu.
type segment struct {
	key  segKey
	path string
	refs int   // entries naming it, being written or not
	end  int64 // where the next block goes: the file's length, with the ranges reserved
	f    *os.File
	// users: reads and writes under way on f, which is not closed under
	// them.
	users int
	// used since the last sweep: one not used for a whole sweep interval
	// is closed.
	used bool
	dead bool // deleted: its last entry was dropped
}

// segmentName is a segment's file name: the broadcast ID hashed (an ID is
// up to 512 bytes of any UTF-8, and file systems differ in case and in the
// names they allow), then the hour.
func segmentName(k segKey) string {
	h := sha256.Sum256([]byte(k.bcast))
	return fmt.Sprintf("%x-%d.seg", h[:12], k.hour)
}

// segment returns (making) a segment; mu held or not shared yet.
func (s *Store) segment(k segKey) *segment {
	g := s.segs[k]
	if g == nil {
		g = &segment{key: k, path: filepath.Join(s.segDir, segmentName(k))}
		s.segs[k] = g
	}
	return g
}

// acquire opens a segment's file if it is closed and counts a user of it,
// whom release lets go; mu held. create is for a writer: a reader of a
// file gone from disk gets fs.ErrNotExist.
func (s *Store) acquire(g *segment, create bool) (*os.File, error) {
	if g.dead {
		return nil, fs.ErrNotExist
	}
	if g.f == nil {
		if s.open >= maxOpenSegments {
			s.closeIdle(true)
		}
		flag := os.O_RDWR
		if create {
			flag |= os.O_CREATE
		}
		f, err := os.OpenFile(g.path, flag, 0o600)
		if err != nil {
			return nil, err
		}
		if create && s.cfg.Sync && g.end == 0 {
			// A new file: its name must survive a crash too.
			if err := syncDir(s.segDir); err != nil {
				_ = f.Close()
				return nil, err
			}
		}
		g.f = f
		s.open++
	}
	g.users++
	g.used = true
	return g.f, nil
}

// release ends a use of a segment's file; mu held.
func (s *Store) release(g *segment) {
	g.users--
	if g.users == 0 && (g.dead || s.closed) {
		s.closeFile(g)
	}
}

func (s *Store) closeFile(g *segment) {
	if g.f == nil {
		return
	}
	if err := g.f.Close(); err != nil {
		s.log.Warn("close segment", "path", g.path, "err", err)
	}
	g.f = nil
	s.open--
}

// closeIdle closes the files of segments without users and not used since
// the last call; with one, only the least recently opened of them, to make
// room for another. mu held.
func (s *Store) closeIdle(one bool) {
	var idle []*segment
	for _, g := range s.segs {
		if g.f != nil && g.users == 0 && (!g.used || one) {
			idle = append(idle, g)
		}
		if !one {
			g.used = false
		}
	}
	if one && len(idle) > 0 {
		// The least recently used: those unused since the last sweep first.
		idle = []*segment{slices.MinFunc(idle, func(a, b *segment) int {
			switch {
			case a.used == b.used:
				return 0
			case !a.used:
				return -1
			}
			return 1
		})}
	}
	for _, g := range idle {
		s.closeFile(g)
	}
}

// retire deletes a segment whose last entry was dropped: the file is
// unlinked now (a reader under way keeps reading it; its file is closed
// when the last user lets go). It is done under mu, so that a put that
// comes to the same hour afterwards makes a new file rather than have
// this unlink take it away. mu held.
func (s *Store) retire(g *segment) {
	g.dead = true
	delete(s.segs, g.key)
	if g.users == 0 {
		s.closeFile(g)
	}
	if err := os.Remove(g.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("delete segment", "path", g.path, "err", err)
	}
}

// checkSegments makes the index and the segment files agree, at Open
// (not shared yet): a record whose range is past its file's end (a write
// torn by a crash, or its file gone) is dropped; a file that no record
// names (a crash between a segment's first block and its record, or a
// migration cut short) is removed. What is left is read as the file's
// length: the next block goes after it.
func (s *Store) checkSegments() error {
	if err := os.MkdirAll(s.segDir, 0o700); err != nil {
		return fmt.Errorf("replay: segments: %w", err)
	}
	for _, g := range s.segs {
		st, err := os.Stat(g.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			g.end = 0
		case err != nil:
			return fmt.Errorf("replay: segments: %w", err)
		default:
			g.end = st.Size()
		}
	}
	var torn []victim
	for id, e := range s.chunks {
		if e.seg != nil && e.off+int64(e.size) > e.seg.end {
			torn = append(torn, s.drop(id, e))
		}
	}
	if len(torn) > 0 {
		s.log.Warn("dropping index records past their segment's end (torn writes)", "records", len(torn))
		if err := s.idxDelete(bucketChunks, victimKeys(torn)...); err != nil {
			return err
		}
	}
	known := make(map[string]bool, len(s.segs))
	for _, g := range s.segs {
		known[filepath.Base(g.path)] = true
	}
	des, err := os.ReadDir(s.segDir)
	if err != nil {
		return fmt.Errorf("replay: segments: %w", err)
	}
	orphans := 0
	for _, d := range des {
		if known[d.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.segDir, d.Name())); err != nil {
			return fmt.Errorf("replay: segments: %w", err)
		}
		orphans++
	}
	if orphans > 0 {
		s.log.Info("removed segment files the index did not know", "files", orphans)
	}
	return nil
}

// punchRanges frees the disk space of dropped blocks whose segments live
// on: adjacent ranges are merged, one punch each.
func (s *Store) punchRanges(vs []victim) {
	vs = slices.DeleteFunc(slices.Clone(vs), func(v victim) bool { return v.seg == nil })
	slices.SortFunc(vs, func(a, b victim) int {
		if a.seg != b.seg {
			return cmp.Compare(a.seg.path, b.seg.path)
		}
		return cmp.Compare(a.off, b.off)
	})
	for i := 0; i < len(vs); {
		g, off, end := vs[i].seg, vs[i].off, vs[i].off+vs[i].size
		j := i + 1
		for ; j < len(vs) && vs[j].seg == g && vs[j].off <= end; j++ {
			end = max(end, vs[j].off+vs[j].size)
		}
		i = j
		s.mu.Lock()
		f, err := s.acquire(g, false)
		s.mu.Unlock()
		if err != nil {
			continue // deleted whole meanwhile, or gone from disk
		}
		if err := punch(f, off, end-off); err != nil {
			s.log.Warn("free a dropped block's range", "path", g.path, "err", err)
		}
		s.mu.Lock()
		s.release(g)
		s.mu.Unlock()
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
