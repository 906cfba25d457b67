package replay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/peerscope/peerscope/chunk"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// broadcaster signs chunks of one broadcast.
type broadcaster struct {
	id   string
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	rand *rand.Rand
}

func newBroadcaster(name string, seed uint64) *broadcaster {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	key := ed25519.NewKeyFromSeed(s[:])
	return &broadcaster{id: name, key: key, pub: key.Public().(ed25519.PublicKey), rand: rand.New(rand.NewPCG(seed, 1))}
}

// chunk makes a signed chunk of n payload bytes captured at wall.
func (b *broadcaster) chunk(seq uint64, wall time.Time, n int) *chunk.Chunk {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(b.rand.Uint32())
	}
	c := &chunk.Chunk{Broadcast: b.id, Seq: seq, Wallclock: wall.UnixNano(), Duration: int64(200 * time.Millisecond), Payload: p}
	if seq%5 == 0 {
		c.Flags |= chunk.FlagKeyframe
	}
	c.Sign(b.key)
	return c
}

// verifier checks chunks against the keys of known broadcasters.
func verifier(bs ...*broadcaster) func(*chunk.Chunk) error {
	return func(c *chunk.Chunk) error {
		for _, b := range bs {
			if b.id == c.Broadcast {
				return c.Verify(b.id, b.pub)
			}
		}
		return fmt.Errorf("unknown broadcast %q", c.Broadcast)
	}
}

func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fileBytes sums the sizes of the regular files under dir (a store's
// segments), and counts the segment files.
func fileBytes(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(d.Name(), ".seg") {
			files++
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, files
}

// blockRange returns where a block is on disk: its segment file, offset
// and length.
func blockRange(t *testing.T, s *Store, id cid.Cid) (path string, off, n int64) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.chunks[id]
	if e == nil || e.seg == nil {
		t.Fatalf("no segment for block %s", id)
	}
	return e.seg.path, e.off, int64(e.size)
}

func TestCIDIsSHA256OfTheSignedChunk(t *testing.T) {
	b := newBroadcaster("b1", 1)
	c := b.chunk(3, time.Unix(100, 0), 1000)
	blk := c.Bytes()
	id := CIDOf(blk)
	if id.Version() != 1 || id.Type() != cid.Raw {
		t.Fatalf("CID %s: version %d codec %#x, want v1 raw", id, id.Version(), id.Type())
	}
	dec, _ := multihash.Decode(id.Hash())
	if dec.Code != multihash.SHA2_256 {
		t.Fatalf("hash %s, want sha2-256", multihash.Codes[dec.Code])
	}
	back, err := DecodeBlock(blk)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(b.id, b.pub); err != nil {
		t.Fatalf("decoded chunk does not verify: %v", err)
	}
	if back.Seq != c.Seq || back.Wallclock != c.Wallclock || back.Duration != c.Duration || back.Flags != c.Flags || string(back.Payload) != string(c.Payload) {
		t.Fatalf("decoded %+v", back)
	}
	if again := back.Clone().Bytes(); string(again) != string(blk) {
		t.Fatal("re-encoding a decoded block changed its bytes")
	}
}

func TestPutGetAndRefusals(t *testing.T) {
	clk := newClock()
	b := newBroadcaster("b1", 1)
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verifier(b)})
	ctx := t.Context()
	var ids []cid.Cid
	for i := range 10 {
		id, err := s.Put(ctx, b.chunk(uint64(i), clk.Now(), 20_000))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := s.Put(ctx, b.chunk(3, clk.Now(), 10)); err != nil {
		t.Fatal(err)
	}
	c, err := s.Chunk(ctx, ids[4])
	if err != nil || c.Seq != 4 {
		t.Fatalf("chunk 4: %v %v", c, err)
	}
	if u := s.Usage(); u.Chunks != 11 || u.Broadcasts != 1 {
		t.Fatalf("usage %+v", u)
	}
	// Again: not written twice.
	if _, err := s.Put(ctx, c); err != nil || s.Usage().Chunks != 11 {
		t.Fatalf("duplicate put: %v, %d chunks", err, s.Usage().Chunks)
	}
	// Forged: the payload changed after signing.
	forged := b.chunk(20, clk.Now(), 100)
	forged.Payload[0] ^= 1
	if _, err := s.Put(ctx, forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged chunk: %v", err)
	}
	// A block that does not hash to the CID it is offered under.
	blk := b.chunk(21, clk.Now(), 100).Bytes()
	if _, err := s.PutBlock(ctx, ids[0], blk); !errors.Is(err, ErrMalformed) {
		t.Fatalf("block under another CID: %v", err)
	}
	held := s.Held(b.id)
	if len(held) != 11 || held[0].Seq != 0 || held[10].Seq != 9 {
		t.Fatalf("held %v", held)
	}

	// A chunk the tree delivered was verified there: PutVerified keeps it
	// without checking its signature again; Put and PutBlock check.
	checks := 0
	verify := verifier(b)
	v := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: func(c *chunk.Chunk) error { checks++; return verify(c) }})
	id, err := v.PutVerified(ctx, b.chunk(30, clk.Now(), 100))
	if err != nil || checks != 0 {
		t.Fatalf("PutVerified: %v, %d signature checks", err, checks)
	}
	if c, err := v.Chunk(ctx, id); err != nil || c.Seq != 30 {
		t.Fatalf("chunk kept by PutVerified: %v %v", c, err)
	}
	if _, err := v.Put(ctx, b.chunk(31, clk.Now(), 100)); err != nil || checks != 1 {
		t.Fatalf("Put: %v, %d signature checks", err, checks)
	}
}

// TestExpiry: 24 h after the end, every chunk is refused at once and the
// sweeper deletes them; the disk goes back to its baseline; a restart
// brings nothing back. Without an end, each chunk expires 24 h after its
// capture.
func TestExpiry(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	ended, open := newBroadcaster("ended", 1), newBroadcaster("open", 2)
	cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(ended, open)}
	s := openStore(t, cfg)
	ctx := t.Context()
	baseline, _ := fileBytes(t, filepath.Join(dir, "segments"))

	start := clk.Now()
	var endedIDs, openIDs []cid.Cid
	for i := range 50 {
		wall := start.Add(time.Duration(i) * time.Minute)
		clk.now = wall // received as captured
		id, err := s.Put(ctx, ended.chunk(uint64(i), wall, 30_000))
		if err != nil {
			t.Fatal(err)
		}
		endedIDs = append(endedIDs, id)
		if id, err = s.Put(ctx, open.chunk(uint64(i), wall, 30_000)); err != nil {
			t.Fatal(err)
		}
		openIDs = append(openIDs, id)
	}
	end := start.Add(50 * time.Minute)
	clk.now = end
	if err := s.SetEnd(ctx, ended.id, end); err != nil {
		t.Fatal(err)
	}
	// A later, longer claim does not extend the replay.
	if err := s.SetEnd(ctx, ended.id, end.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// One segment each: 50 minutes of anchors within the hour.
	if n, files := fileBytes(t, filepath.Join(dir, "segments")); files != 2 || n < baseline+100*30_000 {
		t.Fatalf("%d segment files, %d bytes on disk", files, n)
	}

	// 24 h after the first captures, before the end's 24 h: the open
	// broadcast's first chunk is refused, the ended one's still served.
	clk.now = start.Add(DefaultTTL)
	if _, err := s.Get(ctx, openIDs[0]); !errors.Is(err, ErrExpired) {
		t.Fatalf("open broadcast's first chunk after 24 h: %v", err)
	}
	if _, err := s.Get(ctx, openIDs[1]); err != nil {
		t.Fatalf("open broadcast's second chunk: %v", err)
	}
	if _, err := s.Get(ctx, endedIDs[0]); err != nil {
		t.Fatalf("ended broadcast's first chunk before end+24h: %v", err)
	}

	// end + 24 h: everything of the ended broadcast is refused before the
	// sweeper runs, over the blockstore too.
	clk.now = end.Add(DefaultTTL)
	for _, id := range endedIDs {
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrExpired) {
			t.Fatalf("expired chunk: %v", err)
		}
		if has, _ := s.Blockstore().Has(ctx, id); has {
			t.Fatal("the blockstore says it has an expired chunk")
		}
		if _, err := s.Blockstore().Get(ctx, id); !ipld.IsNotFound(err) {
			t.Fatalf("blockstore Get of an expired chunk: %v", err)
		}
	}
	st, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The ended broadcast's 50, and all 50 of the open one (captured
	// before the end, so more than 24 h ago).
	if st.Chunks != 50+50 || st.Broadcasts != 2 {
		t.Fatalf("sweep %+v", st)
	}
	if n, files := fileBytes(t, filepath.Join(dir, "segments")); files != 0 || n != baseline {
		t.Fatalf("after the sweep: %d segment files, %d bytes on disk, baseline %d", files, n, baseline)
	}
	if u := s.Usage(); u.Chunks != 0 || u.Bytes != 0 || u.Broadcasts != 0 {
		t.Fatalf("usage %+v", u)
	}

	// A restart with the clock turned back brings nothing back.
	_ = s.Close()
	clk.now = start
	s2 := openStore(t, cfg)
	if u := s2.Usage(); u.Chunks != 0 {
		t.Fatalf("after restart: %+v", u)
	}
	if _, ok := s2.End(ended.id); ok {
		t.Fatal("the end of a gone replay survived")
	}
}

// TestExpiryWhileDown: a store closed before the expiry and opened after
// it deletes the expired chunks in Open.
func TestExpiryWhileDown(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	b := newBroadcaster("b", 1)
	cfg := Config{Dir: dir, Now: clk.Now, Verify: verifier(b)}
	s := openStore(t, cfg)
	for i := range 20 {
		if _, err := s.Put(t.Context(), b.chunk(uint64(i), clk.Now(), 5000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetEnd(t.Context(), b.id, clk.Now()); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	s = openStore(t, cfg)
	if u := s.Usage(); u.Chunks != 20 {
		t.Fatalf("reopened before expiry: %+v", u)
	}
	if _, ok := s.End(b.id); !ok {
		t.Fatal("the end was not kept")
	}
	_ = s.Close()

	clk.Add(DefaultTTL)
	s = openStore(t, cfg)
	if u := s.Usage(); u.Chunks != 0 {
		t.Fatalf("reopened after expiry: %+v", u)
	}
	if _, files := fileBytes(t, filepath.Join(dir, "segments")); files != 0 {
		t.Fatalf("%d segment files left", files)
	}
}

// TestCorruptBlocks: a block truncated or altered on disk is detected by
// its hash, not served, and dropped; the others are still served.
func TestCorruptBlocks(t *testing.T) {
	clk := newClock()
	b := newBroadcaster("b", 1)
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verifier(b)})
	ctx := t.Context()
	var ids []cid.Cid
	var chunks []*chunk.Chunk
	for i := range 4 {
		c := b.chunk(uint64(i), clk.Now(), 40_000)
		id, err := s.Put(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		ids, chunks = append(ids, id), append(chunks, c)
	}
	// Flipped (bit rot), and the segment cut off in the middle of the
	// last block (a torn write).
	path, off, n := blockRange(t, s, ids[1])
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	_, _ = f.ReadAt(one[:], off+n/2)
	one[0] ^= 0x40
	if _, err := f.WriteAt(one[:], off+n/2); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	_, off, _ = blockRange(t, s, ids[3])
	if err := os.Truncate(path, off+12_345); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, ids[3]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated block: %v", err)
	}
	if _, err := s.Blockstore().Get(ctx, ids[1]); !ipld.IsNotFound(err) {
		t.Fatalf("altered block over the blockstore: %v", err)
	}
	for _, id := range []cid.Cid{ids[1], ids[3]} {
		if s.Has(id) {
			t.Fatal("a corrupt block is still listed")
		}
	}
	for _, id := range []cid.Cid{ids[0], ids[2]} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("a sound block: %v", err)
		}
	}
	if c := s.Counters(); c.Corrupt != 2 {
		t.Fatalf("counters %+v", c)
	}
	if _, err := s.PutBlock(ctx, ids[1], mustChunk(t, s, ids[0], b, 1).Bytes()); err == nil {
		t.Fatal("a different chunk was accepted under the corrupt one's CID")
	}
	// The chunks can be stored again (fetched anew from a peer), after the
	// cut-off end of the segment, and read back.
	for i, c := range chunks {
		if i == 1 || i == 3 {
			if _, err := s.PutBlock(ctx, ids[i], c.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range ids {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("after storing the corrupt ones again: %v", err)
		}
	}
}

// mustChunk re-makes chunk seq of b as stored under id's broadcast.
func mustChunk(t *testing.T, s *Store, id cid.Cid, b *broadcaster, seq uint64) *chunk.Chunk {
	t.Helper()
	c, err := s.Chunk(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b.chunk(seq, time.Unix(0, c.Wallclock), 10)
}

// TestQuota drops the oldest replays first, and refuses what does not fit
// even then.
func TestQuota(t *testing.T) {
	clk := newClock()
	old, mid, cur := newBroadcaster("old", 1), newBroadcaster("mid", 2), newBroadcaster("cur", 3)
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verifier(old, mid, cur), Quota: 100_000})
	ctx := t.Context()
	put := func(b *broadcaster, seq uint64, n int) error {
		_, err := s.Put(ctx, b.chunk(seq, clk.Now(), n))
		return err
	}
	for i := range 3 {
		if err := put(old, uint64(i), 10_000); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.SetEnd(ctx, old.id, clk.Now())
	clk.Add(time.Minute)
	for i := range 3 {
		if err := put(mid, uint64(i), 10_000); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.SetEnd(ctx, mid.id, clk.Now())
	clk.Add(time.Minute)
	for i := range 4 {
		if err := put(cur, uint64(i), 10_000); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Held(old.id)) != 0 || len(s.Held(mid.id)) != 3 {
		t.Fatalf("held old %d, mid %d: the oldest replay should have gone first", len(s.Held(old.id)), len(s.Held(mid.id)))
	}
	for i := 4; i < 9; i++ {
		if err := put(cur, uint64(i), 10_000); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Held(mid.id)) != 0 {
		t.Fatal("mid should have gone")
	}
	if err := put(cur, 9, 30_000); !errors.Is(err, ErrQuota) {
		t.Fatalf("a chunk that cannot fit: %v", err)
	}
	if u := s.Usage(); u.Bytes > 100_000 {
		t.Fatalf("usage %+v over the quota", u)
	}
}

// TestOrphansRemoved: a segment file the index does not name (a crash
// between a segment's first block and its record) is removed at Open, and
// so is whatever else is in the segments directory.
func TestOrphansRemoved(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	b := newBroadcaster("b", 1)
	s := openStore(t, Config{Dir: dir, Now: clk.Now, Verify: verifier(b)})
	id, err := s.Put(t.Context(), b.chunk(0, clk.Now(), 1000))
	if err != nil {
		t.Fatal(err)
	}
	path, _, _ := blockRange(t, s, id)
	_ = s.Close()
	// A block of the next hour, its record lost; a leftover of anything.
	stray := b.chunk(1, clk.Now().Add(time.Hour), 1000).Bytes()
	next := filepath.Join(dir, "segments", segmentName(segKey{b.id, hourOf(clk.Now().Add(time.Hour).UnixNano())}))
	for p, data := range map[string][]byte{next: stray, filepath.Join(dir, "segments", "x.tmp"): {1}} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, Config{Dir: dir, Now: clk.Now, Verify: verifier(b)})
	des, _ := os.ReadDir(filepath.Join(dir, "segments"))
	if len(des) != 1 || des[0].Name() != filepath.Base(path) {
		t.Fatalf("segments left: %v, want only %s", des, filepath.Base(path))
	}
	if _, err := s.Get(t.Context(), id); err != nil {
		t.Fatalf("the indexed block: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Dir: t.TempDir(), TTL: -1}, {Dir: t.TempDir(), Quota: -1}} {
		if _, err := Open(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Open(%+v): %v", cfg, err)
		}
	}
}

var _ = context.Background

// TestFutureClaims: a broadcaster whose clock says ten years from now
// (capture times, its end) cannot keep its replay on a peer past 24 hours
// from when the peer received it, nor across a restart, nor have it
// evicted after honest replays. (Before, expiry followed the claimed
// times: the chunks stayed ten years, and the quota dropped the honest
// replay first.)
func TestFutureClaims(t *testing.T) {
	clk := newClock()
	liar, liarEnd, honest, next := newBroadcaster("liar", 7), newBroadcaster("liar-end", 8), newBroadcaster("honest", 9), newBroadcaster("next", 10)
	verify := verifier(liar, liarEnd, honest, next)
	ctx := t.Context()
	future := clk.Now().AddDate(10, 0, 0)

	// The quota: the liar's replay, received first, is the oldest and
	// goes when another needs room, not the honest one received after it.
	s := openStore(t, Config{Dir: t.TempDir(), Now: clk.Now, Verify: verify, Quota: 100_000})
	var liarIDs []cid.Cid
	for i := range 2 {
		id, err := s.Put(ctx, liar.chunk(uint64(i), future.Add(time.Duration(i)*time.Second), 20_000))
		if err != nil {
			t.Fatal(err)
		}
		liarIDs = append(liarIDs, id)
	}
	clk.Add(time.Minute)
	if _, err := s.Put(ctx, honest.chunk(0, clk.Now(), 30_000)); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := s.Put(ctx, next.chunk(0, clk.Now(), 45_000)); err != nil {
		t.Fatal(err)
	}
	if s.Has(liarIDs[0]) || s.Has(liarIDs[1]) {
		t.Error("the quota kept the replay claiming the future and dropped an honest one")
	}
	if len(s.Held(honest.id)) != 1 {
		t.Error("the honest replay was dropped for room")
	}

	// An end claimed ten years ahead: 24 h after it arrived the replay is
	// gone, across a restart.
	cfg := Config{Dir: t.TempDir(), Now: clk.Now, Verify: verify}
	s = openStore(t, cfg)
	endedID, err := s.Put(ctx, liarEnd.chunk(0, clk.Now(), 10_000))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetEnd(ctx, liarEnd.id, future); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Hour)
	_ = s.Close()
	s = openStore(t, cfg)
	if !s.Has(endedID) {
		t.Fatal("the replay whose end claims the future is gone before its 24 h")
	}
	clk.Add(4 * time.Hour)
	if _, err := s.Get(ctx, endedID); !errors.Is(err, ErrExpired) {
		t.Fatalf("24 h after its end arrived: %v, want ErrExpired", err)
	}
	if st, err := s.Sweep(ctx); err != nil || st.Chunks != 1 {
		t.Fatalf("sweep %+v, %v", st, err)
	}

	// Chunks with no end known, captured "ten years ahead": 24 h after
	// they arrived they are refused, across a restart.
	id, err := s.Put(ctx, liar.chunk(5, future, 1_000))
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(DefaultTTL - time.Second)
	_ = s.Close()
	s = openStore(t, cfg)
	if !s.Has(id) {
		t.Fatal("gone before its 24 h")
	}
	clk.Add(time.Second)
	if s.Has(id) {
		t.Fatal("a chunk captured in the future outlives 24 h after its arrival")
	}
}
