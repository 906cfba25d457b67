package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peerscope/peerscope/chunk"
)

// segmentFiles lists the names in a store's segments directory.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

// TestSegmentPerHour: a broadcast's chunks go into one file per hour of
// their anchor; a broadcast live for 3 hours with no end known frees its
// first hour's file 24 hours after that hour, not at its end, and the
// others as their hours come.
func TestSegmentPerHour(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	b := newBroadcaster("long", 1)
	s := openStore(t, Config{Dir: dir, Now: clk.Now, Verify: verifier(b)})
	start := clk.Now()
	var ids []cid.Cid
	for i := range 18 { // one every 10 minutes
		clk.now = start.Add(time.Duration(i) * 10 * time.Minute)
		id, err := s.Put(t.Context(), b.chunk(uint64(i), clk.Now(), 5_000))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if got := segmentFiles(t, dir); len(got) != 3 {
		t.Fatalf("segments %v, want 3 (one an hour)", got)
	}
	first, _, _ := blockRange(t, s, ids[0])
	clk.now = start.Add(DefaultTTL + 55*time.Minute) // the first hour's chunks all expired
	st, err := s.Sweep(t.Context())
	if err != nil || st.Chunks != 6 {
		t.Fatalf("sweep %+v, %v", st, err)
	}
	got := segmentFiles(t, dir)
	if len(got) != 2 || slices.Contains(got, filepath.Base(first)) {
		t.Fatalf("segments %v: the first hour's should be gone", got)
	}
	for _, id := range ids[6:] {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Fatalf("a later hour's chunk: %v", err)
		}
	}
	clk.now = start.Add(DefaultTTL + 3*time.Hour)
	if _, err := s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 0 {
		t.Fatalf("segments %v left after every chunk expired", got)
	}
}

// TestSegmentDeletedWithLastEntry: a segment file goes as its last entry is
// dropped, whichever drops it: the quota, a corrupt block, the blockstore's
// DeleteBlock.
func TestSegmentDeletedWithLastEntry(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	old, cur, one := newBroadcaster("old", 1), newBroadcaster("cur", 2), newBroadcaster("one", 3)
	s := openStore(t, Config{Dir: dir, Now: clk.Now, Verify: verifier(old, cur, one), Quota: 100_000})
	ctx := t.Context()
	var oldIDs []cid.Cid
	for i := range 4 {
		id, err := s.Put(ctx, old.chunk(uint64(i), clk.Now(), 10_000))
		if err != nil {
			t.Fatal(err)
		}
		oldIDs = append(oldIDs, id)
	}
	oldSeg, _, _ := blockRange(t, s, oldIDs[0])
	clk.Add(time.Minute)
	for i := range 6 {
		if _, err := s.Put(ctx, cur.chunk(uint64(i), clk.Now(), 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Held(old.id)) != 0 {
		t.Fatal("the quota kept the older replay")
	}
	if _, err := os.Stat(oldSeg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the evicted replay's segment: %v", err)
	}

	// A broadcast of one chunk, found corrupt: its segment goes.
	s2 := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verifier(one)})
	c := one.chunk(0, clk.Now(), 3_000)
	id, err := s2.Put(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	path, off, _ := blockRange(t, s2, id)
	if err := os.Truncate(path, off+100); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a torn block: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the segment of the only, corrupt, block: %v", err)
	}
	// Fetched again: a new file of the same hour, read back.
	if _, err := s2.PutBlock(ctx, id, c.Bytes()); err != nil {
		t.Fatal(err)
	}
	if b, err := s2.Get(ctx, id); err != nil || !bytes.Equal(b, c.Bytes()) {
		t.Fatalf("stored again: %v", err)
	}
	if err := s2.Blockstore().DeleteBlock(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the segment after DeleteBlock of its only block: %v", err)
	}
}

// TestTornAtOpen: a record whose range runs past its segment's end (the
// machine crashed after the record and before all of the block was on
// disk) is dropped at Open, not listed; the next block of that segment
// goes after what is there, and everything reads back.
func TestTornAtOpen(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	b := newBroadcaster("b", 1)
	cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(b)}
	s := openStore(t, cfg)
	var ids []cid.Cid
	for i := range 3 {
		id, err := s.Put(t.Context(), b.chunk(uint64(i), clk.Now(), 8_000))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	path, off, _ := blockRange(t, s, ids[2])
	_ = s.Close()
	if err := os.Truncate(path, off+1_000); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	if s.Has(ids[2]) || len(s.Held(b.id)) != 2 {
		t.Fatalf("the torn block is still listed: held %d", len(s.Held(b.id)))
	}
	if s.Counters().Corrupt != 0 {
		t.Fatal("dropped on read, not at Open")
	}
	c := b.chunk(3, clk.Now(), 8_000)
	id, err := s.Put(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, off3, _ := blockRange(t, s, id); off3 != off+1_000 {
		t.Fatalf("the next block at %d, want after the file's end %d", off3, off+1_000)
	}
	_ = s.Close()
	s = openStore(t, cfg)
	for _, id := range []cid.Cid{ids[0], ids[1], id} {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Fatalf("after a restart: %v", err)
		}
	}
}

// TestMigrateFlatfs opens a store written by the flatfs code
// (testdata/store-v0, made at aaa5209): every chunk reads back, the end is
// kept, Dir/blocks is gone, and so it stays across a restart. A block file
// missing or damaged, or a file the index does not know, is dropped.
func TestMigrateFlatfs(t *testing.T) {
	// The fixture's chunks, made again: the same keys, payloads and times.
	clk := newClock()
	ended, open := newBroadcaster("v0-ended", 41), newBroadcaster("v0-open", 42)
	var want []*chunk.Chunk
	for i := range 5 {
		want = append(want, ended.chunk(uint64(i), clk.Now(), 1500))
		clk.Add(time.Second)
	}
	end := clk.Now()
	for i := range 3 {
		want = append(want, open.chunk(uint64(i), clk.Now(), 1200))
		clk.Add(time.Second)
	}
	clk.Add(time.Hour)

	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, blocks string)
		lost   []int // of want
	}{
		{name: "whole"},
		{name: "damaged", lost: []int{1, 6}, damage: func(t *testing.T, blocks string) {
			for _, i := range []int{1, 6} {
				p := flatfsFile(t, blocks, CIDOf(want[i].Bytes()))
				if i == 1 {
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
					continue
				}
				data, _ := os.ReadFile(p)
				data[100] ^= 1
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(blocks, "4L", "CIQSTRAY.data"), []byte("stray"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS("testdata/store-v0")); err != nil {
				t.Fatal(err)
			}
			if tc.damage != nil {
				tc.damage(t, filepath.Join(dir, "blocks"))
			}
			cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(ended, open)}
			for round := range 2 {
				s := openStore(t, cfg)
				if _, err := os.Stat(filepath.Join(dir, "blocks")); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("round %d: Dir/blocks: %v", round, err)
				}
				if got, ok := s.End(ended.id); !ok || !got.Equal(end) {
					t.Fatalf("round %d: the end %v %v, want %v", round, got, ok, end)
				}
				for i, c := range want {
					b, err := s.Get(t.Context(), CIDOf(c.Bytes()))
					switch {
					case slices.Contains(tc.lost, i):
						if !errors.Is(err, ErrNotFound) {
							t.Fatalf("round %d: chunk %d, lost: %v", round, i, err)
						}
					case err != nil:
						t.Fatalf("round %d: chunk %d: %v", round, i, err)
					case !bytes.Equal(b, c.Bytes()):
						t.Fatalf("round %d: chunk %d: other bytes", round, i)
					}
				}
				if u := s.Usage(); u.Chunks != len(want)-len(tc.lost) || u.Broadcasts != 2 {
					t.Fatalf("round %d: usage %+v", round, u)
				}
				if got := segmentFiles(t, dir); len(got) != 2 {
					t.Fatalf("round %d: segments %v, want one per broadcast", round, got)
				}
				_ = s.Close()
			}
		})
	}

	// Past the end's 24 hours: nothing of the ended broadcast is moved.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/store-v0")); err != nil {
		t.Fatal(err)
	}
	late := &clock{now: end.Add(DefaultTTL)}
	s := openStore(t, Config{Dir: dir, Now: late.Now})
	// (The open broadcast's first chunk was captured at the end: gone too.)
	if len(s.Held(ended.id)) != 0 || len(s.Held(open.id)) != 2 || s.Usage().Chunks != 2 {
		t.Fatalf("migrated after the end's 24 h: %+v", s.Usage())
	}
}

// flatfsFile finds a block's file in a flatfs directory.
func flatfsFile(t *testing.T, dir string, id cid.Cid) string {
	t.Helper()
	var path string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == blockName(id)+".data" {
			path = p
		}
		return err
	})
	if path == "" {
		t.Fatalf("no file for block %s", id)
	}
	return path
}

// TestConcurrentPuts: putters into the same segment (the tree's chunks,
// bitswap's blocks) and readers at once; every chunk reads back, during
// and after a restart. Run with -race.
func TestConcurrentPuts(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	bs := []*broadcaster{newBroadcaster("a", 1), newBroadcaster("b", 2)}
	cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(bs...)}
	s := openStore(t, cfg)
	var chunks []*chunk.Chunk
	for i := range 120 {
		chunks = append(chunks, bs[i%2].chunk(uint64(i), clk.Now(), 3_000+i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(chunks))
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(chunks); i += 4 {
				c := chunks[i]
				var err error
				if w%2 == 0 {
					_, err = s.Put(t.Context(), c)
				} else {
					_, err = s.PutBlock(t.Context(), CIDOf(c.Bytes()), c.Bytes())
				}
				if err != nil {
					errs <- err
				}
				for _, h := range s.Held(c.Broadcast) {
					if _, err := s.Get(t.Context(), h.CID); err != nil {
						errs <- fmt.Errorf("a listed chunk: %w", err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for round := range 2 {
		for _, c := range chunks {
			if b, err := s.Get(t.Context(), CIDOf(c.Bytes())); err != nil || !bytes.Equal(b, c.Bytes()) {
				t.Fatalf("round %d: chunk %d: %v", round, c.Seq, err)
			}
		}
		_ = s.Close()
		s = openStore(t, cfg)
	}
}

// TestSegmentFilesClosed: a node keeping many replays does not keep a file
// open for each; one not used for a sweep interval is closed, and reopened
// when read.
func TestSegmentFilesClosed(t *testing.T) {
	clk := newClock()
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now})
	var ids []cid.Cid
	for i := range 3 * maxOpenSegments {
		id, err := s.Put(t.Context(), newBroadcaster(fmt.Sprint("b", i), uint64(i)).chunk(0, clk.Now(), 500))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	openFiles := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.open
	}
	if n := openFiles(); n > maxOpenSegments {
		t.Fatalf("%d segment files open", n)
	}
	for range 2 {
		if _, err := s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFiles(); n != 0 {
		t.Fatalf("%d segment files open after two idle sweeps", n)
	}
	for _, id := range ids {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFiles(); n > maxOpenSegments {
		t.Fatalf("%d segment files open after reading them all", n)
	}
}

// TestSync: with Config.Sync, puts, reads and a restart work the same.
func TestSync(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	b := newBroadcaster("b", 1)
	cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(b), Sync: true}
	s := openStore(t, cfg)
	var ids []cid.Cid
	for i := range 3 {
		id, err := s.Put(t.Context(), b.chunk(uint64(i), clk.Now(), 2_000))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	_ = s.Close()
	s = openStore(t, cfg)
	for _, id := range ids {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
}
