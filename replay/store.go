package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peerscope/peerscope/chunk"
)

// Defaults for the zero values of Config.
const (
	// DefaultTTL is how long a replay lives after its broadcast ended.
	DefaultTTL = 24 * time.Hour
	// DefaultQuota is a full node's storage for replays: about 1.8 hours of
	// a 2.5 Mb/s broadcast.
	DefaultQuota = 2 << 30
	// LightQuota is what a light node (one that relays to nobody) keeps by
	// default: about 14 minutes at 2.5 Mb/s.
	LightQuota = 256 << 20
	// DefaultSweepInterval is how often Run sweeps expired blocks.
	DefaultSweepInterval = time.Minute
)

// Config configures a Store.
type Config struct {
	// Dir holds the blocks (Dir/segments, segment.go) and the expiry
	// index (Dir/index.db, bbolt). Required.
	Dir string
	// TTL is how long a replay lives after its broadcast ended (or, when
	// the end is not known, after each chunk's capture); default DefaultTTL.
	TTL time.Duration
	// Quota bounds the bytes of blocks kept; default DefaultQuota. When a
	// new chunk would exceed it, the oldest other replays are dropped first.
	Quota int64
	// SweepInterval is how often Run sweeps; default DefaultSweepInterval.
	SweepInterval time.Duration
	// Sync makes every write durable before Put returns (fsync of the
	// segment file and of the index). Off by default: a block torn by a
	// crash of the machine fails its hash check on read and is dropped (or
	// its record at Open, when it runs past its segment's end), and a lost
	// index record only makes a chunk go sooner (index.go; its bytes go
	// with their segment) — a refetch, never a wrong answer or a chunk
	// served past its expiry. With it a 62.5 KB Put costs about 0.8 ms here
	// instead of about 0.1 ms (flatfs: 2 ms, and 0.2 to 0.7 ms).
	Sync bool
	// Verify checks a chunk's signature before it is kept (the node checks
	// it against the key in the broadcast ID). Nil keeps chunks unchecked:
	// only for callers that verified them already.
	Verify func(*chunk.Chunk) error
	// Now is the clock that expiry is judged by; default time.Now.
	Now func() time.Time
	// Logger; default: discard.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: no directory", ErrConfig)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Quota == 0 {
		c.Quota = DefaultQuota
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.TTL < 0:
		return fmt.Errorf("%w: negative TTL", ErrConfig)
	case c.Quota < 0:
		return fmt.Errorf("%w: negative quota", ErrConfig)
	case c.SweepInterval < 0:
		return fmt.Errorf("%w: negative sweep interval", ErrConfig)
	}
	return nil
}

// entry is one stored chunk, as the index knows it.
type entry struct {
	b     *bcast
	seq   uint64
	wall  int64 // capture, Unix ns: the broadcaster's claim
	recv  int64 // when this store received it, Unix ns: the local clock
	size  int   // block bytes
	flags chunk.Flags
	// seg and off: where the block is, size bytes at off in seg's file.
	// seg is nil only for a record of the flatfs store before segments,
	// between load and migrate.
	seg *segment
	off int64
	// writing: its block is not on disk yet (put is between its index
	// record and its block); under Store.mu. Not listed, not served.
	writing bool
}

// anchor is when a chunk's time counts from while its broadcast's end is
// not known: its capture, but never later than when it came here — a
// capture time claimed in the future must not keep it longer.
func (e *entry) anchor() int64 { return min(e.wall, e.recv) }

// bcast is what the index knows of one broadcast.
type bcast struct {
	id string
	// end is when it ended, Unix ns (0 while not known): the end it
	// claimed, but never later than when this store learnt it.
	end    int64
	chunks map[cid.Cid]*entry
	bytes  int64
	last   int64 // newest chunk anchor (entry.anchor), Unix ns: the age for the quota
	man    bool  // a manifest is kept
}

// expiry returns when a chunk e of b expires: TTL after the broadcast's
// end, or after the chunk's anchor while the end is not known. Both are
// anchored to the local clock (no later than when the claim arrived), so
// the broadcaster's clock can shorten a replay's life but never lengthen
// it.
func (s *Store) expiry(b *bcast, e *entry) int64 {
	if b.end != 0 {
		return b.end + int64(s.cfg.TTL)
	}
	return e.anchor() + int64(s.cfg.TTL)
}

// Store keeps replay chunks on disk, with their expiry. Its methods are
// safe for concurrent use.
type Store struct {
	cfg    Config
	log    *slog.Logger
	segDir string
	index  *bolt.DB

	mu     sync.Mutex
	closed bool
	chunks map[cid.Cid]*entry
	bcasts map[string]*bcast
	bytes  int64
	segs   map[segKey]*segment
	open   int // segment files open

	stats struct {
		put, dup, refused, expired, corrupt, swept, evicted atomic.Uint64
	}
}

// Open opens (or creates) the store in cfg.Dir. What expired while the node
// was down is deleted before Open returns, index records whose blocks were
// not all written (a crash between the two writes) are dropped, and segment
// files the index does not name are removed: a restart resurrects nothing.
// A store kept by the flatfs code (Dir/blocks) is moved into segments.
func Open(cfg Config) (_ *Store, err error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, segDir: filepath.Join(cfg.Dir, "segments"),
		chunks: map[cid.Cid]*entry{}, bcasts: map[string]*bcast{}, segs: map[segKey]*segment{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.index, err = openIndex(filepath.Join(cfg.Dir, "index.db"), cfg.Sync, s.log); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.checkSegments(); err != nil {
		return nil, err
	}
	if err := s.migrate(); err != nil {
		return nil, err
	}
	if _, err := s.Sweep(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// blockName is a block's name in the flatfs store (less ".data"), which
// migrate reads.
func blockName(c cid.Cid) string { return dshelp.MultihashToDsKey(c.Hash()).BaseNamespace() }
func (s *Store) now() int64      { return s.cfg.Now().UnixNano() }

// bcast returns (making) the index's record of a broadcast; mu held or
// not shared yet.
func (s *Store) bcast(id string) *bcast {
	b := s.bcasts[id]
	if b == nil {
		b = &bcast{id: id, chunks: map[cid.Cid]*entry{}}
		s.bcasts[id] = b
	}
	return b
}

func (s *Store) add(c cid.Cid, e *entry) {
	s.chunks[c] = e
	e.b.chunks[c] = e
	e.b.bytes += int64(e.size)
	e.b.last = max(e.b.last, e.anchor())
	s.bytes += int64(e.size)
	if e.seg != nil {
		e.seg.refs++
	}
}

// drop takes a chunk out of the index in memory and returns what is left to
// delete: its range of a segment that lives on, or nothing when it was the
// segment's last block — the segment file is deleted here (retire). mu held.
func (s *Store) drop(c cid.Cid, e *entry) victim {
	delete(s.chunks, c)
	delete(e.b.chunks, c)
	e.b.bytes -= int64(e.size)
	s.bytes -= int64(e.size)
	v := victim{id: c}
	if g := e.seg; g != nil {
		if g.refs--; g.refs == 0 {
			s.retire(g)
		} else {
			v.seg, v.off, v.size = g, e.off, int64(e.size)
		}
	}
	return v
}

// Put keeps a chunk, verified with Config.Verify, and returns its CID.
// Chunks already kept are not written twice.
func (s *Store) Put(ctx context.Context, c *chunk.Chunk) (cid.Cid, error) {
	b := c.Bytes()
	id := CIDOf(b)
	return id, s.put(ctx, id, c, b, true)
}

// PutVerified keeps a chunk its caller has already verified (a chunk the
// tree delivered: mesh verifies every chunk before it forwards or delivers
// it), so the signature is not checked a second time.
func (s *Store) PutVerified(ctx context.Context, c *chunk.Chunk) (cid.Cid, error) {
	b := c.Bytes()
	id := CIDOf(b)
	return id, s.put(ctx, id, c, b, false)
}

// PutBlock keeps a block fetched from a peer: it must hash to id, decode to
// a chunk and verify.
func (s *Store) PutBlock(ctx context.Context, id cid.Cid, b []byte) (*chunk.Chunk, error) {
	if !checkCID(id, b) {
		return nil, fmt.Errorf("%w: %s does not hash to its CID", ErrMalformed, id)
	}
	c, err := DecodeBlock(b)
	if err != nil {
		return nil, err
	}
	return c, s.put(ctx, id, c, b, true)
}

func (s *Store) put(ctx context.Context, id cid.Cid, c *chunk.Chunk, b []byte, verify bool) error {
	if verify && s.cfg.Verify != nil {
		if err := s.cfg.Verify(c); err != nil {
			s.stats.refused.Add(1)
			return fmt.Errorf("%w: %w", ErrBadSignature, err)
		}
	}
	now := s.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if _, ok := s.chunks[id]; ok {
		s.mu.Unlock()
		s.stats.dup.Add(1)
		return nil
	}
	bc := s.bcast(c.Broadcast)
	e := &entry{b: bc, seq: c.Seq, wall: c.Wallclock, recv: now, size: len(b), flags: c.Flags, writing: true}
	if s.expiry(bc, e) <= now {
		s.mu.Unlock()
		s.stats.expired.Add(1)
		return fmt.Errorf("%w: chunk %d of %s", ErrExpired, c.Seq, c.Broadcast)
	}
	victims, err := s.makeRoom(bc, int64(len(b)))
	if err != nil {
		s.mu.Unlock()
		s.stats.refused.Add(1)
		return err
	}
	g := s.segment(segKey{bc.id, hourOf(e.anchor())})
	f, err := s.acquire(g, true)
	if err != nil {
		if g.refs == 0 {
			delete(s.segs, g.key)
		}
		s.mu.Unlock()
		s.remove(victims)
		return fmt.Errorf("replay: store chunk %d: %w", c.Seq, err)
	}
	// The block's range is taken now, under mu: puts into one segment
	// write side by side, each at its own offset.
	e.seg, e.off = g, g.end
	g.end += int64(len(b))
	s.add(id, e)
	s.mu.Unlock()
	s.remove(victims)
	// The index first: a block is never on disk without its expiry.
	if err = s.idxPut(bucketChunks, id.Bytes(), marshalEntry(e)); err == nil {
		if _, err = f.WriteAt(b, e.off); err == nil && s.cfg.Sync {
			err = f.Sync()
		}
	}
	s.mu.Lock()
	s.release(g)
	if err == nil {
		e.writing = false
		s.mu.Unlock()
		s.stats.put.Add(1)
		return nil
	}
	var v []victim
	if s.chunks[id] == e {
		v = append(v, s.drop(id, e))
	}
	s.mu.Unlock()
	s.punchRanges(v)
	_ = s.idxDelete(bucketChunks, id.Bytes())
	return fmt.Errorf("replay: store chunk %d: %w", c.Seq, err)
}

// victim is a chunk dropped from the index, whose bytes are still to be
// freed when seg is set: size bytes at off in seg (a segment that lives
// on).
type victim struct {
	id   cid.Cid
	seg  *segment
	off  int64
	size int64
}

// makeRoom picks whole replays other than keep, oldest first, until n more
// bytes fit in the quota, and takes them out of the index (mu held).
func (s *Store) makeRoom(keep *bcast, n int64) ([]victim, error) {
	if s.bytes+n <= s.cfg.Quota {
		return nil, nil
	}
	var others []*bcast
	for _, b := range s.bcasts {
		if b != keep && len(b.chunks) > 0 {
			others = append(others, b)
		}
	}
	slices.SortFunc(others, func(a, b *bcast) int { return int(min(max(a.age()-b.age(), -1), 1)) })
	free := s.cfg.Quota - s.bytes
	var drop []*bcast
	for _, b := range others {
		if free >= n {
			break
		}
		free += b.bytes
		drop = append(drop, b)
	}
	if free < n {
		return nil, fmt.Errorf("%w: %d bytes kept of %d", ErrQuota, s.bytes, s.cfg.Quota)
	}
	var out []victim
	for _, b := range drop {
		s.log.Info("quota: dropping an older replay", "broadcast", b.id, "bytes", b.bytes)
		for id, e := range b.chunks {
			out = append(out, s.drop(id, e))
		}
		s.stats.evicted.Add(1)
	}
	return out, nil
}

// age orders replays for the quota: the end, or the newest chunk's anchor
// (both on the local clock: a broadcaster cannot make its replay evicted
// last by claiming the future).
func (b *bcast) age() int64 {
	if b.end != 0 {
		return b.end
	}
	return b.last
}

// remove frees the bytes of dropped blocks (those whose segments were not
// deleted whole), then deletes their index records.
func (s *Store) remove(vs []victim) {
	if len(vs) == 0 {
		return
	}
	s.punchRanges(vs)
	if err := s.idxDelete(bucketChunks, victimKeys(vs)...); err != nil {
		s.log.Warn("delete index records", "err", err)
	}
}

func victimKeys(vs []victim) [][]byte {
	keys := make([][]byte, 0, len(vs))
	for _, v := range vs {
		keys = append(keys, v.id.Bytes())
	}
	return keys
}

// SetEnd records when a broadcast ended: all of its chunks expire TTL
// later. Only the first end counts (a later claim cannot extend a replay),
// and an end claimed in the future counts from now: the broadcaster's clock
// cannot keep its replay on the peers past 24 hours from the end's arrival.
func (s *Store) SetEnd(_ context.Context, broadcast string, end time.Time) error {
	now := s.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	b := s.bcast(broadcast)
	if b.end != 0 {
		s.mu.Unlock()
		return nil
	}
	b.end = min(end.UnixNano(), now)
	rec := marshalBcast(b)
	s.mu.Unlock()
	return s.idxPut(bucketBcasts, []byte(broadcast), rec)
}

// End returns when a broadcast ended, as far as this store knows.
func (s *Store) End(broadcast string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bcasts[broadcast]; b != nil && b.end != 0 {
		return time.Unix(0, b.end), true
	}
	return time.Time{}, false
}

// Expired reports whether a broadcast's replay is over: it ended more than
// TTL ago.
func (s *Store) Expired(broadcast string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bcasts[broadcast]
	return b != nil && b.end != 0 && b.end+int64(s.cfg.TTL) <= s.now()
}

// lookup returns a live index entry (mu not held).
func (s *Store) lookup(id cid.Cid) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(id)
}

func (s *Store) lookupLocked(id cid.Cid) (*entry, error) {
	if s.closed {
		return nil, ErrClosed
	}
	e := s.chunks[id]
	if e == nil || e.writing {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if s.expiry(e.b, e) <= s.now() {
		s.stats.expired.Add(1)
		return nil, fmt.Errorf("%w: %s", ErrExpired, id)
	}
	return e, nil
}

// BroadcastOf returns the broadcast of a stored, unexpired chunk.
func (s *Store) BroadcastOf(id cid.Cid) (string, error) {
	e, err := s.lookup(id)
	if err != nil {
		return "", err
	}
	return e.b.id, nil
}

// Has reports whether the store holds an unexpired chunk with that CID.
func (s *Store) Has(id cid.Cid) bool {
	_, err := s.lookup(id)
	return err == nil
}

// Get returns a block's bytes, checked against its CID. An expired chunk is
// refused (ErrExpired) even before the sweeper deletes it; a block that
// does not hash to its CID is deleted and refused (ErrCorrupt).
func (s *Store) Get(ctx context.Context, id cid.Cid) ([]byte, error) {
	s.mu.Lock()
	e, err := s.lookupLocked(id)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	f, err := s.acquire(e.seg, false)
	s.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		s.forget(id, e)
		return nil, fmt.Errorf("%w: %s is gone from disk", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: read %s: %w", id, err)
	}
	b := make([]byte, e.size)
	n, err := f.ReadAt(b, e.off)
	s.mu.Lock()
	s.release(e.seg)
	dropped := s.chunks[id] != e // meanwhile (expired, evicted): its range may be freed
	s.mu.Unlock()
	if dropped {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("replay: read %s: %w", id, err)
	}
	// Short (the segment was cut off in this range: a torn write) or not
	// the bytes hashed (a hole never written, bit rot).
	if n < len(b) || !checkCID(id, b) {
		s.stats.corrupt.Add(1)
		s.log.Warn("a block on disk is corrupt: dropped", "cid", id, "broadcast", e.b.id, "seq", e.seq, "read", n, "want", e.size)
		s.forget(id, e)
		return nil, fmt.Errorf("%w: %s (%d bytes on disk, %d stored)", ErrCorrupt, id, n, e.size)
	}
	return b, nil
}

// Chunk returns a stored chunk, checked as Get does.
func (s *Store) Chunk(ctx context.Context, id cid.Cid) (*chunk.Chunk, error) {
	b, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return DecodeBlock(b)
}

// forget deletes a chunk: its bytes, then its index record.
func (s *Store) forget(id cid.Cid, e *entry) {
	s.mu.Lock()
	if s.chunks[id] != e {
		s.mu.Unlock()
		return // dropped already, by whoever deletes it
	}
	v := s.drop(id, e)
	s.mu.Unlock()
	s.remove([]victim{v})
}

// SweepStats says what one sweep did.
type SweepStats struct {
	Chunks     int   // blocks deleted
	Bytes      int64 // their bytes
	Broadcasts int   // replays that are gone entirely
}

// Sweep deletes every expired chunk (and the records of replays that are
// over), judged by Config.Now.
func (s *Store) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	now := s.now()
	var vs []victim
	var gone []string
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return st, ErrClosed
	}
	for _, b := range s.bcasts {
		for id, e := range b.chunks {
			if s.expiry(b, e) <= now {
				st.Bytes += int64(e.size)
				vs = append(vs, s.drop(id, e))
			}
		}
		if len(b.chunks) == 0 && (b.end == 0 || b.end+int64(s.cfg.TTL) <= now) {
			delete(s.bcasts, b.id)
			gone = append(gone, b.id)
		}
	}
	s.closeIdle(false)
	s.mu.Unlock()
	st.Chunks = len(vs)
	s.remove(vs)
	if len(gone) > 0 {
		keys := make([][]byte, 0, len(gone))
		for _, id := range gone {
			keys = append(keys, []byte(id))
		}
		if err := errors.Join(s.idxDelete(bucketBcasts, keys...), s.idxDelete(bucketManifests, keys...)); err != nil {
			s.log.Warn("delete index records", "err", err)
		}
	}
	st.Broadcasts = len(gone)
	s.stats.swept.Add(uint64(st.Chunks))
	if st.Chunks > 0 {
		s.log.Info("swept expired replay chunks", "chunks", st.Chunks, "bytes", st.Bytes, "replays_gone", st.Broadcasts)
	}
	return st, ctx.Err()
}

// Run sweeps every SweepInterval until ctx ends.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				s.log.Warn("sweep", "err", err)
			}
		}
	}
}

// Usage is what the store holds.
type Usage struct {
	Chunks     int
	Bytes      int64 // block bytes
	Broadcasts int
	Quota      int64
}

// Usage returns what the store holds now.
func (s *Store) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.bcasts {
		if len(b.chunks) > 0 {
			n++
		}
	}
	return Usage{Chunks: len(s.chunks), Bytes: s.bytes, Broadcasts: n, Quota: s.cfg.Quota}
}

// Counters of what the store did, for metrics.
type Counters struct {
	Put, Duplicate, Refused, Expired, Corrupt, Swept, Evicted uint64
}

// Counters returns the store's counters.
func (s *Store) Counters() Counters {
	return Counters{
		Put: s.stats.put.Load(), Duplicate: s.stats.dup.Load(), Refused: s.stats.refused.Load(),
		Expired: s.stats.expired.Load(), Corrupt: s.stats.corrupt.Load(), Swept: s.stats.swept.Load(),
		Evicted: s.stats.evicted.Load(),
	}
}

// Held is one stored chunk of a broadcast.
type Held struct {
	CID       cid.Cid
	Seq       uint64
	Wallclock time.Time
	Flags     chunk.Flags
	Size      int
}

// Held returns the unexpired chunks kept of a broadcast, in sequence order
// (an init chunk before the part of the same Seq).
func (s *Store) Held(broadcast string) []Held {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bcasts[broadcast]
	if b == nil {
		return nil
	}
	now := s.now()
	out := make([]Held, 0, len(b.chunks))
	for id, e := range b.chunks {
		if !e.writing && s.expiry(b, e) > now {
			out = append(out, Held{CID: id, Seq: e.seq, Wallclock: time.Unix(0, e.wall), Flags: e.flags, Size: e.size})
		}
	}
	slices.SortFunc(out, func(a, b Held) int {
		if a.Seq != b.Seq {
			return cmp.Compare(a.Seq, b.Seq)
		}
		return cmp.Compare(b.Flags&chunk.FlagInit, a.Flags&chunk.FlagInit)
	})
	return out
}

// Blockstore returns the store as a boxo blockstore, for bitswap to serve
// from: Has and Get answer only unexpired chunks, Get only blocks that hash
// to their CID; Put keeps only chunks that decode and verify.
func (s *Store) Blockstore() blockstore.Blockstore { return bstore{s} }

// Close closes the store. Safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, g := range s.segs {
		if g.users == 0 {
			s.closeFile(g) // the others when their reads and writes end
		}
	}
	s.mu.Unlock()
	if s.index != nil {
		return s.index.Close()
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.cfg.Dir }
