package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/replay"
)

// Fetching tunables: a window of chunks asked for at once is given up
// (for now) when none of it arrives for stallAfter; what no peer gave is
// asked for again every retryEvery; a part the page asks for waits at most
// partWait for a peer.
const (
	// fetchWindow is how many chunks a replay asks bitswap for at once.
	fetchWindow = 64
	stallAfter  = 10 * time.Second
	retryEvery  = 30 * time.Second
	partWait    = 10 * time.Second
	// goneWait is the wait for a part that no peer gave in the last round.
	goneWait = time.Second
)

// Replay is a replay this node plays: its manifest, the chunks fetched
// (from any peer that has them, by bitswap) into the store, or into memory
// on a node that keeps none, and the HLS VOD that plays them.
type Replay struct {
	s      *Swarm
	id     string
	m      *replay.Manifest
	signed []byte
	vod    *hls.VOD
	page   http.Handler
	log    *slog.Logger

	parts map[uint64]replay.Entry // media parts by Seq
	byCID map[cid.Cid]replay.Entry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	have map[cid.Cid]bool
	mem  map[cid.Cid][]byte // the blocks, when the node keeps no replays (or is over its quota)
	gone map[cid.Cid]bool   // asked for, and no peer gave them

	fetched    atomic.Int64 // chunks fetched from peers (not held before)
	fetchBytes atomic.Int64
	bad        atomic.Int64 // blocks refused (signature, manifest)
	missing    atomic.Int64 // chunks no peer gave in the last round
	views      atomic.Int64 // replay views, as the broadcaster last said
	identified atomic.Int64 // of which identified
	started    time.Time
	doneAt     atomic.Int64 // Unix ns when every chunk was here
	complete   chan struct{}
	closeOnce  sync.Once
}

// Open opens a broadcast's replay: its manifest from this node (if it
// watched) or from the link's peers (the broadcaster need not be among
// them, nor online), the chunks from every peer that holds them. It
// returns once the manifest is verified; the chunks come in the background
// (Progress, Complete) and on demand as the VOD plays. view says whether it
// counts as a replay view (not when a live viewer completes its copy after
// the end). A replay already open is returned as it is.
func (s *Swarm) Open(ctx context.Context, l link.Link, view bool) (*Replay, error) {
	id := l.Broadcast
	if _, _, err := link.BroadcasterOf(id); err != nil {
		return nil, err
	}
	if r := s.Lookup(id); r != nil {
		if !s.Expired(r.m) {
			return r, nil
		}
		_ = r.Close()
		return nil, fmt.Errorf("%w: %.80s ended %s ago", replay.ErrExpired, id, s.clock.Now().Sub(r.m.Ended).Round(time.Second))
	}
	m, signed, holders, err := s.findManifest(ctx, l)
	if err != nil {
		return nil, err
	}
	if s.Expired(m) {
		return nil, fmt.Errorf("%w: %.80s ended %s ago", replay.ErrExpired, id, s.clock.Now().Sub(m.Ended).Round(time.Second))
	}
	if st := s.cfg.Store; st != nil {
		if err := st.PutManifest(ctx, m, signed); err != nil {
			return nil, fmt.Errorf("swarm: replay: %w", err)
		}
	}
	r, err := s.newReplay(m, signed)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		r.cancel()
		return nil, ErrClosed
	case s.replays[id] != nil:
		old := s.replays[id]
		s.mu.Unlock()
		r.cancel()
		return old, nil
	}
	s.replays[id] = r
	s.mu.Unlock()

	peers := append(slices.Clone(l.Peers), holders...)
	// Logged before the fetching starts: it writes r.have.
	r.log.Info("replay opened", "chunks", len(m.Chunks), "duration", m.Duration(), "held", len(r.have), "peers", len(peers))
	r.wg.Go(func() { r.connect(peers) })
	r.wg.Go(r.prefetch)
	if view {
		r.wg.Go(func() { r.sendViews(peers) })
	}
	return r, nil
}

// newReplay makes a replay of a verified manifest, and its VOD.
func (s *Swarm) newReplay(m *replay.Manifest, signed []byte) (*Replay, error) {
	r := &Replay{s: s, id: m.Broadcast, m: m, signed: signed, log: s.log.With("replay", m.Broadcast),
		parts: map[uint64]replay.Entry{}, byCID: map[cid.Cid]replay.Entry{},
		have: map[cid.Cid]bool{}, gone: map[cid.Cid]bool{},
		started: s.clock.Now(), complete: make(chan struct{})}
	st := s.cfg.Store
	if st == nil {
		r.mem = map[cid.Cid][]byte{}
	}
	var items []hls.VODItem
	for _, e := range m.Chunks {
		r.byCID[e.CID] = e
		switch {
		case e.Flags&chunk.FlagInit != 0:
			init, err := s.media(&chunk.Chunk{Broadcast: m.Broadcast, Seq: e.Seq, Flags: e.Flags, Payload: e.Init})
			if err != nil {
				return nil, fmt.Errorf("swarm: replay of %.80s: init %d: %w", m.Broadcast, e.Seq, err)
			}
			items = append(items, hls.VODItem{Seq: e.Seq, Init: init, Wallclock: e.Wallclock})
		case e.Duration > 0:
			r.parts[e.Seq] = e
			items = append(items, hls.VODItem{Seq: e.Seq, Duration: e.Duration, Independent: e.Flags&chunk.FlagKeyframe != 0, Wallclock: e.Wallclock})
		}
		if st != nil && st.Has(e.CID) {
			r.have[e.CID] = true
		}
	}
	var err error
	if r.vod, err = hls.NewVOD(hls.VODConfig{Items: items, Fetch: r.part, Logger: s.log.With("part", "vod")}); err != nil {
		return nil, fmt.Errorf("swarm: replay of %.80s: %w", m.Broadcast, err)
	}
	if s.cfg.Page != nil {
		r.page = s.cfg.Page(r)
	}
	r.ctx, r.cancel = context.WithCancel(s.ctx)
	return r, nil
}

// Lookup returns the open replay of a broadcast, or nil.
func (s *Swarm) Lookup(id string) *Replay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replays[id]
}

// CloseExpired closes every open replay whose time is over (Expired), with
// what it held in memory, and returns how many it closed: a replay being
// watched when its 24 hours end is not watched on from this node.
func (s *Swarm) CloseExpired() int {
	var gone []*Replay
	for _, r := range s.Replays() {
		if s.Expired(r.m) {
			gone = append(gone, r)
		}
	}
	for _, r := range gone {
		r.log.Info("replay expired: closed")
		_ = r.Close()
	}
	return len(gone)
}

// Replays returns the replays this node plays.
func (s *Swarm) Replays() []*Replay {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Replay, 0, len(s.replays))
	for _, r := range s.replays {
		out = append(out, r)
	}
	return out
}

// connect dials the peers that hold the replay, so that bitswap asks them.
func (r *Replay) connect(peers []peer.AddrInfo) {
	var wg sync.WaitGroup
	h := r.s.cfg.Host
	for _, p := range peers {
		if p.ID == h.ID() {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.ctx, Timeout)
			defer cancel()
			if err := h.Connect(ctx, p); err != nil {
				r.log.Debug("replay: holder not reached", "peer", p.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// sendViews, once every chunk of the replay is here, proves it to the
// broadcaster and a few holders (views.go): each counts the view if it
// can check it. Peers that speak only 1.1.0 are skipped: they would count
// any view, proven or not.
func (r *Replay) sendViews(peers []peer.AddrInfo) {
	select {
	case <-r.complete:
	case <-r.ctx.Done():
		return
	}
	var att []byte
	if r.s.cfg.Attestation != nil {
		att = r.s.cfg.Attestation()
	}
	root, _, _ := link.BroadcasterOf(r.id)
	targets := append([]peer.AddrInfo{{ID: root}}, peers...)
	seen := map[peer.ID]bool{r.s.cfg.Host.ID(): true}
	sent := 0
	for _, p := range targets {
		if seen[p.ID] || sent >= maxViewTargets {
			continue
		}
		seen[p.ID] = true
		sent++
		resp, err := r.s.sendView(r.ctx, p, r, att)
		if err != nil {
			r.log.Debug("replay view not sent", "to", p.ID, "err", err)
		} else if p.ID == root {
			r.views.Store(int64(resp.views))
			r.identified.Store(int64(resp.identified))
		}
		if r.ctx.Err() != nil {
			return
		}
	}
}

// prefetch fetches every chunk the node lacks, in order, a window at a
// time, from whichever peers bitswap finds them on. A window that stalls
// (no connected peer has those chunks: they were only on nodes that are
// gone, or on the broadcaster alone) is left for later, so that the rest
// still comes; the missing chunks are asked for again every retryEvery
// until they come or the replay closes.
func (r *Replay) prefetch() {
	for round := 0; ; round++ {
		want := r.lacking(r.m.Chunks)
		if len(want) == 0 {
			break
		}
		if round > 0 {
			r.log.Info("replay: chunks no peer had, asking again", "missing", len(want))
		}
		for len(want) > 0 {
			batch := want[:min(fetchWindow, len(want))]
			want = want[len(batch):]
			r.fetchWindow(batch)
			if r.ctx.Err() != nil {
				return
			}
		}
		r.mu.Lock()
		missing := len(r.m.Chunks) - len(r.have)
		r.mu.Unlock()
		r.missing.Store(int64(missing))
		if missing == 0 {
			break
		}
		if r.s.clock.Sleep(r.ctx, retryEvery) != nil {
			return
		}
		if r.s.Expired(r.m) {
			r.log.Info("replay: expired with chunks still missing", "missing", missing)
			return
		}
	}
	r.missing.Store(0)
	r.doneAt.Store(r.s.clock.Now().UnixNano())
	close(r.complete)
	r.log.Info("replay: every chunk is here", "fetched", r.fetched.Load(), "bytes", r.fetchBytes.Load(), "in", r.s.clock.Now().Sub(r.started).Round(time.Millisecond))
}

// lacking returns the CIDs of entries not here yet.
func (r *Replay) lacking(entries []replay.Entry) []cid.Cid {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cid.Cid
	for _, e := range entries {
		if !r.have[e.CID] {
			out = append(out, e.CID)
		}
	}
	return out
}

// fetchWindow asks for the chunks of batch not yet here, until they are
// all here or none has come for stallAfter.
func (r *Replay) fetchWindow(batch []cid.Cid) {
	var missing []cid.Cid
	r.mu.Lock()
	for _, c := range batch {
		if !r.have[c] {
			missing = append(missing, c)
		}
	}
	r.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	// A session of its own per window: bitswap prunes a peer from a
	// session after a run of DONT_HAVEs, which a window of chunks nobody
	// holds would cause, and the next window would then not ask that peer.
	ch, err := r.s.cfg.Blocks.GetBlocks(ctx, missing)
	if err != nil {
		return
	}
	// A network timeout, not media time: the wall clock's.
	stall := time.NewTimer(stallAfter)
	defer stall.Stop()
	for {
		select {
		case blk, ok := <-ch:
			if !ok {
				return
			}
			r.accept(blk.Cid(), blk.RawData())
			stall.Reset(stallAfter)
		case <-stall.C:
			r.mu.Lock()
			for _, c := range missing {
				if !r.have[c] {
					r.gone[c] = true
				}
			}
			r.mu.Unlock()
			return
		}
	}
}

// accept checks a fetched block against the manifest and keeps it.
func (r *Replay) accept(id cid.Cid, data []byte) bool {
	e, ok := r.byCID[id]
	if !ok {
		return false
	}
	var c *chunk.Chunk
	var err error
	if st := r.s.cfg.Store; st != nil {
		c, err = st.PutBlock(context.Background(), id, data)
		if errors.Is(err, replay.ErrQuota) {
			// Not kept, but still playable from memory.
			c, err = replay.DecodeBlock(data)
			r.mu.Lock()
			if r.mem == nil {
				r.mem = map[cid.Cid][]byte{}
			}
			r.mem[id] = data
			r.mu.Unlock()
		}
	} else {
		if c, err = replay.DecodeBlock(data); err == nil {
			err = replay.Verify(c)
		}
		r.mu.Lock()
		r.mem[id] = data
		r.mu.Unlock()
	}
	if err == nil {
		err = r.m.Check(e, c)
	}
	if err != nil {
		r.bad.Add(1)
		r.log.Warn("replay: a fetched chunk was refused", "seq", e.Seq, "err", err)
		return false
	}
	r.mu.Lock()
	fresh := !r.have[id]
	r.have[id] = true
	delete(r.gone, id)
	r.mu.Unlock()
	if fresh {
		r.fetched.Add(1)
		r.fetchBytes.Add(int64(len(data)))
	}
	return true
}

// part returns a media part's payload for the VOD: from the store, or
// fetched now (ahead of the prefetch) when the player wants it first.
func (r *Replay) part(ctx context.Context, seq uint64) ([]byte, error) {
	e, ok := r.parts[seq]
	if !ok {
		return nil, fmt.Errorf("swarm: replay has no part %d", seq)
	}
	for {
		if b, err := r.block(ctx, e.CID); err == nil {
			c, err := replay.DecodeBlock(b)
			if err != nil {
				return nil, err
			}
			return r.s.media(c)
		}
		r.mu.Lock()
		if r.have[e.CID] {
			// It was here but is gone (corrupt on disk, or expired).
			delete(r.have, e.CID)
		}
		wait := partWait
		if r.gone[e.CID] {
			wait = goneWait
		}
		r.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, wait)
		blk, err := r.s.cfg.Blocks.GetBlock(wctx, e.CID)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("swarm: replay part %d: no peer gave it: %w", seq, err)
		}
		if !r.accept(blk.Cid(), blk.RawData()) {
			return nil, fmt.Errorf("swarm: replay part %d: %w", seq, replay.ErrMismatch)
		}
	}
}

// block returns a held block's bytes.
func (r *Replay) block(ctx context.Context, id cid.Cid) ([]byte, error) {
	r.mu.Lock()
	b, inMem := r.mem[id]
	r.mu.Unlock()
	if inMem {
		return b, nil
	}
	if r.s.cfg.Store == nil {
		return nil, replay.ErrNotFound
	}
	return r.s.cfg.Store.Get(ctx, id)
}

// ID returns the broadcast ID.
func (r *Replay) ID() string { return r.id }

// Chunk returns a chunk of the replay as this node holds it (for checks).
func (r *Replay) Chunk(ctx context.Context, id cid.Cid) (*chunk.Chunk, error) {
	b, err := r.block(ctx, id)
	if err != nil {
		return nil, err
	}
	return replay.DecodeBlock(b)
}

// Manifest returns the replay's verified manifest.
func (r *Replay) Manifest() *replay.Manifest { return r.m }

// VOD returns the HLS VOD that plays the replay.
func (r *Replay) VOD() *hls.VOD { return r.vod }

// Page returns the page Config.Page made for the replay (nil without one).
func (r *Replay) Page() http.Handler { return r.page }

// Duration returns the replay's media length.
func (r *Replay) Duration() time.Duration { return r.vod.Duration() }

// Expired reports whether the replay's time is over.
func (r *Replay) Expired() bool { return r.s.Expired(r.m) }

// Views returns the replay's views: on its broadcaster, the ones counted
// here; elsewhere, what the broadcaster said when this node's view
// reached it (nothing before this node had the whole replay).
func (r *Replay) Views() Views {
	if root, _, _ := link.BroadcasterOf(r.id); root == r.s.cfg.Host.ID() {
		return r.s.Views(r.id)
	}
	all, identified := r.views.Load(), r.identified.Load()
	return Views{Identified: int(identified), Anonymous: int(all - identified)}
}

// Complete is closed when every chunk of the replay is on this node.
func (r *Replay) Complete() <-chan struct{} { return r.complete }

// Progress says how far the fetching is.
type Progress struct {
	Chunks, Have int
	Fetched      int64 // chunks fetched from peers
	Bytes        int64 // their bytes
	Refused      int64
	Missing      int64         // chunks no connected peer had in the last round (asked for again)
	Elapsed      time.Duration // from Open to the last chunk (or now)
}

// Progress returns how far the fetching is.
func (r *Replay) Progress() Progress {
	r.mu.Lock()
	have := len(r.have)
	r.mu.Unlock()
	end := r.s.clock.Now()
	if d := r.doneAt.Load(); d != 0 {
		end = time.Unix(0, d)
	}
	return Progress{Chunks: len(r.m.Chunks), Have: have, Fetched: r.fetched.Load(), Bytes: r.fetchBytes.Load(),
		Refused: r.bad.Load(), Missing: r.missing.Load(), Elapsed: end.Sub(r.started)}
}

// Close stops fetching and forgets the replay. Safe to call more than once.
func (r *Replay) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.s.mu.Lock()
		if r.s.replays[r.id] == r {
			delete(r.s.replays, r.id)
		}
		r.s.mu.Unlock()
	})
	return nil
}

// media is what the player gets of a chunk (Config.Open).
func (s *Swarm) media(c *chunk.Chunk) ([]byte, error) {
	if s.cfg.Open == nil {
		return c.Payload, nil
	}
	return s.cfg.Open(c)
}
