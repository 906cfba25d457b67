package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/replay"
)

// ErrReplayExpired: the replay's 24 hours are over (or no peer of the link
// has it any more).
var ErrReplayExpired = fmt.Errorf("node: %w", replay.ErrExpired)

// fetchWindow is how many chunks a replay asks bitswap for at once.
const fetchWindow = 64

// Replay is a replay this node plays: its manifest, the chunks fetched
// (from any peer that has them, by bitswap) into the replay store, and the
// page at /r/<ID>/ that plays it as HLS VOD with its comments.
type Replay struct {
	n      *Node
	id     string
	m      *replay.Manifest
	signed []byte
	vod    *hls.VOD
	page   http.Handler
	log    logger

	parts    map[uint64]replay.Entry // media parts by Seq
	byCID    map[cid.Cid]replay.Entry
	comments []player.Comment

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	have    map[cid.Cid]bool
	mem     map[cid.Cid][]byte // the blocks, when the node keeps no replays
	gone    map[cid.Cid]bool   // asked for, and no peer gave them
	waiters map[cid.Cid][]chan struct{}

	fetched    atomic.Int64 // chunks fetched from peers (not held before)
	fetchBytes atomic.Int64
	bad        atomic.Int64 // blocks refused (signature, manifest)
	missing    atomic.Int64 // chunks no peer gave in the last round
	views      atomic.Int64 // replay views, as the broadcaster last said
	started    time.Time
	doneAt     atomic.Int64 // Unix ns when every chunk was here
	complete   chan struct{}
	closeOnce  sync.Once
}

type logger = interface {
	Info(string, ...any)
	Warn(string, ...any)
	Debug(string, ...any)
}

// Replay opens a broadcast's replay: its manifest from this node (if it
// watched) or from the link's peers (the broadcaster need not be among
// them, nor online), the chunks from every peer that holds them. It
// returns once the manifest is verified; the chunks come in the
// background (Progress, Complete) and on demand as the page plays.
func (n *Node) Replay(ctx context.Context, l link.Link) (*Replay, error) {
	return n.startReplay(ctx, l, true)
}

// startReplay opens a replay; view says whether it counts as a replay view
// (not when a live viewer completes its copy after the end).
func (n *Node) startReplay(ctx context.Context, l link.Link, view bool) (*Replay, error) {
	id := l.Broadcast
	if _, _, err := link.BroadcasterOf(id); err != nil {
		return nil, err
	}
	if r := n.lookupReplay(id); r != nil {
		return r, nil
	}
	if n.bitswap == nil {
		return nil, ErrClosed
	}
	m, signed, holders, err := n.findManifest(ctx, l)
	if err != nil {
		return nil, err
	}
	if n.replayExpired(m) {
		return nil, fmt.Errorf("%w: %s ended %s ago", ErrReplayExpired, clip(id), n.cfg.Now().Sub(m.Ended).Round(time.Second))
	}
	if n.replay != nil {
		if err := n.replay.PutManifest(ctx, m, signed); err != nil {
			return nil, fmt.Errorf("node: replay: %w", err)
		}
	}
	r := &Replay{n: n, id: id, m: m, signed: signed, log: n.log.With("replay", shortBroadcast(id)),
		parts: map[uint64]replay.Entry{}, byCID: map[cid.Cid]replay.Entry{},
		have: map[cid.Cid]bool{}, waiters: map[cid.Cid][]chan struct{}{}, gone: map[cid.Cid]bool{},
		started: time.Now(), complete: make(chan struct{})}
	if n.replay == nil {
		r.mem = map[cid.Cid][]byte{}
	}
	var items []hls.VODItem
	for _, e := range m.Chunks {
		r.byCID[e.CID] = e
		switch {
		case e.Flags&chunk.FlagInit != 0:
			items = append(items, hls.VODItem{Seq: e.Seq, Init: e.Init, Wallclock: e.Wallclock})
		case e.Duration > 0:
			r.parts[e.Seq] = e
			items = append(items, hls.VODItem{Seq: e.Seq, Duration: e.Duration, Independent: e.Flags&chunk.FlagKeyframe != 0, Wallclock: e.Wallclock})
		}
		if n.replay != nil && n.replay.Has(e.CID) {
			r.have[e.CID] = true
		}
	}
	if r.vod, err = hls.NewVOD(hls.VODConfig{Items: items, Fetch: r.part, Logger: n.log.With("part", "vod")}); err != nil {
		return nil, fmt.Errorf("node: replay of %s: %w", clip(id), err)
	}
	r.comments = replayComments(m, r.vod)
	r.page = player.New(player.Routes{HLS: r.vod, Status: r.status, Comments: func() []player.Comment { return r.comments }})
	r.ctx, r.cancel = context.WithCancel(context.Background())

	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		r.cancel()
		return nil, ErrClosed
	case n.replays[id] != nil:
		old := n.replays[id]
		n.mu.Unlock()
		r.cancel()
		return old, nil
	}
	n.replays[id] = r
	n.mu.Unlock()

	peers := append(slices.Clone(l.Peers), holders...)
	r.wg.Go(func() { r.connect(peers) })
	r.wg.Go(r.prefetch)
	if view {
		r.wg.Go(func() { r.sendViews(peers) })
	}
	r.log.Info("replay opened", "chunks", len(m.Chunks), "duration", m.Duration(), "held", len(r.have), "peers", len(peers), "page", r.PlayerURL())
	return r, nil
}

// findManifest returns a replay's manifest: this node's own, or the first
// that a peer of the link (then a holder they name) gives.
func (n *Node) findManifest(ctx context.Context, l link.Link) (*replay.Manifest, []byte, []peer.AddrInfo, error) {
	id := l.Broadcast
	_, key, _ := link.BroadcasterOf(id)
	if signed := n.signedManifest(ctx, id); signed != nil {
		m, err := replay.DecodeManifest(signed, id, key)
		if err == nil {
			return m, signed, nil, nil
		}
	}
	var errs []error
	var holders []peer.AddrInfo
	asked := map[peer.ID]bool{n.host.ID(): true}
	queue := slices.Clone(l.Peers)
	for len(queue) > 0 && len(asked) <= 2*maxHolders {
		p := queue[0]
		queue = queue[1:]
		if asked[p.ID] {
			continue
		}
		asked[p.ID] = true
		m, signed, hs, err := n.fetchManifest(ctx, p, id)
		holders = append(holders, hs...)
		if err == nil {
			return m, signed, holders, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", shortPeer(p.ID), err))
		queue = append(queue, hs...)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: no peer to ask for the replay", link.ErrMalformed)
	}
	return nil, nil, nil, fmt.Errorf("%w: no peer gave the replay's manifest: %w", ErrReplayExpired, errors.Join(errs...))
}

// connect dials the peers that hold the replay, so that bitswap asks them.
func (r *Replay) connect(peers []peer.AddrInfo) {
	var wg sync.WaitGroup
	for _, p := range peers {
		if p.ID == r.n.host.ID() {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
			defer cancel()
			if err := r.n.host.Connect(ctx, p); err != nil {
				r.log.Debug("replay: holder not reached", "peer", shortPeer(p.ID), "err", err)
			}
		})
	}
	wg.Wait()
}

// sendViews tells the broadcaster (and the holders) that this node watches.
func (r *Replay) sendViews(peers []peer.AddrInfo) {
	root, _, _ := link.BroadcasterOf(r.id)
	targets := append([]peer.AddrInfo{{ID: root}}, peers...)
	seen := map[peer.ID]bool{r.n.host.ID(): true}
	for _, p := range targets {
		if seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		resp, err := r.n.askReplay(r.ctx, p, replayRequest{kind: replayAskView, broadcast: r.id})
		if err == nil && p.ID == root {
			r.views.Store(int64(resp.views))
		}
		if r.ctx.Err() != nil {
			return
		}
	}
}

// Fetching tunables: a window of chunks asked for at once is given up
// (for now) when none of it arrives for stallAfter; what no peer gave is
// asked for again every retryEvery; a part the page asks for waits at most
// partWait for a peer.
const (
	stallAfter = 10 * time.Second
	retryEvery = 30 * time.Second
	partWait   = 10 * time.Second
	// goneWait is the wait for a part that no peer gave in the last round.
	goneWait = time.Second
)

// prefetch fetches every chunk the node lacks, in order, a window at a
// time, from whichever peers bitswap finds them on. A window that stalls
// (no connected peer has those chunks: they were only on nodes that are
// gone, or on the broadcaster alone) is left for later, so that the rest
// still comes; the missing chunks are asked for again every retryEvery
// until they come or the replay closes.
func (r *Replay) prefetch() {
	for round := 0; ; round++ {
		var want []cid.Cid
		r.mu.Lock()
		for _, e := range r.m.Chunks {
			if !r.have[e.CID] {
				want = append(want, e.CID)
			}
		}
		r.mu.Unlock()
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
		select {
		case <-time.After(retryEvery):
		case <-r.ctx.Done():
			return
		}
		if r.n.replayExpired(r.m) {
			r.log.Info("replay: expired with chunks still missing", "missing", missing)
			return
		}
	}
	r.missing.Store(0)
	r.doneAt.Store(time.Now().UnixNano())
	close(r.complete)
	r.log.Info("replay: every chunk is here", "fetched", r.fetched.Load(), "bytes", r.fetchBytes.Load(), "in", time.Since(r.started).Round(time.Millisecond))
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
	ch, err := r.n.bitswap.GetBlocks(ctx, missing)
	if err != nil {
		return
	}
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
	if st := r.n.replay; st != nil {
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
			err = verifyChunk(c)
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
	ws := r.waiters[id]
	delete(r.waiters, id)
	r.mu.Unlock()
	if fresh {
		r.fetched.Add(1)
		r.fetchBytes.Add(int64(len(data)))
	}
	for _, w := range ws {
		close(w)
	}
	return true
}

// part returns a media part's payload for the VOD: from the store, or
// fetched now (ahead of the prefetch) when the player wants it first.
func (r *Replay) part(ctx context.Context, seq uint64) ([]byte, error) {
	e, ok := r.parts[seq]
	if !ok {
		return nil, fmt.Errorf("node: replay has no part %d", seq)
	}
	for {
		if b, err := r.block(ctx, e.CID); err == nil {
			c, err := replay.DecodeBlock(b)
			if err != nil {
				return nil, err
			}
			return c.Payload, nil
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
		blk, err := r.n.bitswap.GetBlock(wctx, e.CID)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node: replay part %d: no peer gave it: %w", seq, err)
		}
		if !r.accept(blk.Cid(), blk.RawData()) {
			return nil, fmt.Errorf("node: replay part %d: %w", seq, replay.ErrMismatch)
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
	if r.n.replay == nil {
		return nil, replay.ErrNotFound
	}
	return r.n.replay.Get(ctx, id)
}

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

// Complete is closed when every chunk of the replay is on this node.
func (r *Replay) Complete() <-chan struct{} { return r.complete }

// ReplayProgress says how far the fetching is.
type ReplayProgress struct {
	Chunks, Have int
	Fetched      int64 // chunks fetched from peers
	Bytes        int64 // their bytes
	Refused      int64
	Missing      int64         // chunks no connected peer had in the last round (asked for again)
	Elapsed      time.Duration // from Replay to the last chunk (or now)
}

// Progress returns how far the fetching is.
func (r *Replay) Progress() ReplayProgress {
	r.mu.Lock()
	have := len(r.have)
	r.mu.Unlock()
	end := time.Now()
	if d := r.doneAt.Load(); d != 0 {
		end = time.Unix(0, d)
	}
	return ReplayProgress{Chunks: len(r.m.Chunks), Have: have, Fetched: r.fetched.Load(), Bytes: r.fetchBytes.Load(),
		Refused: r.bad.Load(), Missing: r.missing.Load(), Elapsed: end.Sub(r.started)}
}

// PlayerPath returns the replay page's path ("/r/<ID>/").
func (r *Replay) PlayerPath() string { return "/r/" + r.id + "/" }

// PlayerURL returns the replay page on this machine.
func (r *Replay) PlayerURL() string { return r.n.HTTPURL() + r.PlayerPath() }

// HLSURL returns the VOD playlist.
func (r *Replay) HLSURL() string { return r.PlayerURL() + "hls/index.m3u8" }

// Duration returns the replay's media length.
func (r *Replay) Duration() time.Duration { return r.vod.Duration() }

func (r *Replay) status() player.Status {
	views := int(r.views.Load())
	if root, _, _ := link.BroadcasterOf(r.id); root == r.n.host.ID() {
		views = r.n.ReplayViews(r.id)
	}
	return player.Status{Title: r.m.Title, Ended: true, Replay: true, StartedAt: r.m.Started,
		Duration: r.vod.Duration().Seconds(), ReplayViewers: views}
}

// Close stops fetching and removes the page. Safe to call more than once.
func (r *Replay) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.n.mu.Lock()
		if r.n.replays[r.id] == r {
			delete(r.n.replays, r.id)
		}
		r.n.mu.Unlock()
	})
	return nil
}

func (n *Node) lookupReplay(id string) *Replay {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.replays[id]
}

// replayComments places the manifest's comments on the replay's timeline.
func replayComments(m *replay.Manifest, v *hls.VOD) []player.Comment {
	if len(m.Comments) == 0 {
		return nil
	}
	log, err := chat.ParseLog(m.Comments)
	if err != nil {
		return nil
	}
	var out []player.Comment
	for _, c := range log {
		if c.Deleted {
			continue
		}
		name := c.Author.Peer.String()
		if id := c.Author.Identity; id != nil && id.Name != "" {
			name = id.Name
		} else if len(name) > 8 {
			name = "…" + name[len(name)-6:]
		}
		out = append(out, player.Comment{At: v.MediaTime(c.At).Seconds(), Name: name, Text: c.Text, Broadcaster: c.Author.Broadcaster})
	}
	slices.SortStableFunc(out, func(a, b player.Comment) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	return out
}

// serveReplay serves /r/<ID>/…: the replay page, opened on first request
// when this node holds the manifest.
func (n *Node) serveReplay(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	r := n.lookupReplay(id)
	if r == nil {
		if _, _, err := link.BroadcasterOf(id); err != nil {
			http.Error(w, "not a broadcast ID", http.StatusNotFound)
			return
		}
		if n.signedManifest(req.Context(), id) == nil {
			http.Error(w, "no replay of this broadcast on this node (it may have expired)", http.StatusNotFound)
			return
		}
		var err error
		if r, err = n.startReplay(req.Context(), link.Link{Broadcast: id}, true); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
	}
	if n.replayExpired(r.m) {
		http.Error(w, "this replay has expired", http.StatusGone)
		return
	}
	http.StripPrefix("/r/"+id, r.page).ServeHTTP(w, req)
}

// Replays returns the replays this node plays.
func (n *Node) Replays() []*Replay {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Replay, 0, len(n.replays))
	for _, r := range n.replays {
		out = append(out, r)
	}
	return out
}
