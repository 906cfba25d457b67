package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	bsserver "github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockstore"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/replay"
	"github.com/peerscope/peerscope/replay/swarm"
)

// The node's part in replays is wiring: which store (DataDir/replay, a
// temporary one, or none), one bitswap instance over the host serving that
// store, the replay swarm (replay/swarm) answering swarm.ProtocolID, and
// the pages at /r/<ID>/. Each broadcast hands its delivered chunks to the
// store through a bounded queue; the broadcaster records what it signs and
// seals the manifest as the broadcast ends; a viewer awaits the manifest
// once it has seen the end.

// keepQueue is how many delivered chunks may wait for the replay store
// before new ones are dropped (counted): about 200 s of 200 ms parts.
const keepQueue = 1024

// The bitswap server's workers: goroutines reading the store, and sending.
const (
	bitswapStoreWorkers = 8
	bitswapTaskWorkers  = 2
)

// bitswapPrefix keeps Peerscope's bitswap apart from IPFS's on the same
// host: only replay chunks are asked for and served.
const bitswapPrefix = "/peerscope"

// openReplay opens the node's replay store (in DataDir/replay, or a
// temporary directory removed by Close) with its sweeper, bitswap over it,
// and the swarm; a node that keeps no replays fetches into memory. New
// registers the swarm's protocol once the community side, which hears of
// replay views, is up.
func (n *Node) openReplay(ctx context.Context) error {
	var bs blockstore.Blockstore
	if n.cfg.NoReplays {
		// It keeps nothing and serves nothing, but may watch replays.
		bs = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	} else {
		st, err := n.openStore()
		if err != nil {
			return err
		}
		n.store = st
		n.wg.Go(func() { st.Run(ctx) })
		bs = st.Blockstore()
	}
	// There is no content routing: a replay viewer connects to the
	// replay's swarm (link peers, holders the manifest's answerers name)
	// and bitswap asks its connected peers.
	net := bsnet.NewFromIpfsHost(n.host, bsnet.Prefix(bitswapPrefix))
	n.bitswap = bitswap.New(ctx, net, nil, bs,
		bitswap.WithServerEnabled(n.store != nil),
		// boxo's defaults are an IPFS node's (128 blockstore readers, 8 +
		// 8 task workers): 144 goroutines, over a megabyte of stacks, on
		// every viewer that keeps replays. A replay is served to a few
		// peers at a time, from a store on this machine's disk.
		bitswap.WithServerOption(bsserver.EngineBlockstoreWorkerCount(bitswapStoreWorkers)),
		bitswap.WithServerOption(bsserver.EngineTaskWorkerCount(bitswapTaskWorkers)),
		bitswap.WithServerOption(bsserver.TaskWorkerCount(bitswapTaskWorkers)),
		// A private broadcast's blocks go to its members only.
		bitswap.WithPeerBlockRequestFilter(n.replayFilter),
		bitswap.WithClientOption(bsclient.WithoutDuplicatedBlockStats()))
	var err error
	n.swarm, err = swarm.New(swarm.Config{
		Host: n.host, Blocks: n.bitswap, Store: n.store, TTL: n.cfg.ReplayTTL, Clock: n.clock,
		Neighbours: n.neighbours,
		OnView:     func(id string) { n.community.ReplayViewed(id) },
		Identify:   n.identify,
		Attestation: func() []byte {
			if n.community == nil {
				return nil
			}
			return n.Attestation()
		},
		Page:   n.replayPage,
		Open:   n.replayMedia,
		Logger: n.log.With("part", "replay"),
	})
	if err != nil {
		return err
	}
	// A replay open when its time ends is closed, with the blocks it held
	// in memory: the store's sweeper deletes what is on disk.
	n.wg.Go(func() {
		t := n.clock.NewTicker(replay.DefaultSweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				n.swarm.CloseExpired()
			}
		}
	})
	return nil
}

// openStore opens the replay store with the node's quota and clock.
func (n *Node) openStore() (*replay.Store, error) {
	dir := ""
	if n.cfg.DataDir != "" {
		dir = filepath.Join(n.cfg.DataDir, "replay")
	} else {
		var err error
		if n.replayTmp, err = os.MkdirTemp("", "peerscope-replay-"); err != nil {
			return nil, err
		}
		dir = n.replayTmp
	}
	quota := n.cfg.ReplayQuota
	if quota == 0 {
		quota = replay.DefaultQuota
		if n.cfg.Slots == NoRelay {
			quota = replay.LightQuota
		}
	}
	st, err := replay.Open(replay.Config{
		Dir:    dir,
		Quota:  quota,
		TTL:    n.cfg.ReplayTTL,
		Verify: replay.Verify,
		Now:    n.clock.Now,
		Logger: n.log.With("part", "replay"),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: replay store: %w", ErrConfig, err)
	}
	return st, nil
}

// closeReplay stops the replays' fetching and bitswap, then closes the
// store (after the broadcasts, which write to it, and before the host).
func (n *Node) closeReplay() {
	if n.swarm != nil {
		_ = n.swarm.Close()
	}
	if n.bitswap != nil {
		_ = n.bitswap.Close()
	}
}

// neighbours names the peers likely to hold a broadcast this node takes
// part in: its parent and children in the tree, the peers it joined
// through (what a replay answer names first).
func (n *Node) neighbours(ctx context.Context, id string) []peer.ID {
	b := n.lookup(id)
	if b == nil {
		return nil
	}
	var out []peer.ID
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	if st, err := b.Status(ctx); err == nil {
		if st.Parent != "" {
			out = append(out, st.Parent)
		}
		out = append(out, st.Children...)
	}
	cancel()
	for _, p := range b.link.Peers {
		out = append(out, p.ID)
	}
	return out
}

// ReplayStore returns the node's replay store (nil when it keeps none).
func (n *Node) ReplayStore() *replay.Store { return n.store }

// ReplayViews returns how many replay views this node counted of a
// broadcast, identified and anonymous (on the broadcaster: every proven
// view that reached it; replay/swarm's views.go).
func (n *Node) ReplayViews(id string) int { return n.swarm.Views(id).Total() }

// ReplayViewsBy returns ReplayViews apart: views of distinct signed-in
// accounts, and anonymous ones.
func (n *Node) ReplayViewsBy(id string) swarm.Views { return n.swarm.Views(id) }

// identify is the replay swarm's Identify: the account of an attestation
// this node believes (its bootstraps' keys, and Config.TrustedKeys) that
// was issued to p.
func (n *Node) identify(att []byte, p peer.ID) (string, bool) {
	if n.community == nil {
		return "", false
	}
	ts := n.Trust()
	if len(n.cfg.TrustedKeys) > 0 {
		if ts == nil {
			ts, _ = identity.Trust(n.cfg.TrustedKeys...)
		} else {
			ts = ts.With(n.cfg.TrustedKeys...)
		}
	}
	if ts == nil {
		return "", false
	}
	a, err := ts.VerifyBytes(att, p, n.clock.Now())
	if err != nil {
		return "", false
	}
	return a.Identity().AccountKey(), true
}

// Replay is a replay this node plays (replay/swarm), with its page on the
// node's web server.
type Replay struct {
	*swarm.Replay
	n *Node
}

// Replay opens a broadcast's replay: its manifest from this node (if it
// watched) or from the link's peers (the broadcaster need not be among
// them, nor online), the chunks from every peer that holds them. It
// returns once the manifest is verified; the chunks come in the background
// (Progress, Complete) and on demand as the page plays.
func (n *Node) Replay(ctx context.Context, l link.Link) (*Replay, error) {
	if err := n.replayKeys(ctx, l.Broadcast); err != nil {
		return nil, err
	}
	r, err := n.swarm.Open(ctx, l, true)
	if err != nil {
		return nil, err
	}
	return &Replay{r, n}, nil
}

// Replays returns the replays this node plays.
func (n *Node) Replays() []*Replay {
	var out []*Replay
	for _, r := range n.swarm.Replays() {
		out = append(out, &Replay{r, n})
	}
	return out
}

// PlayerPath returns the replay page's path ("/r/<ID>/").
func (r *Replay) PlayerPath() string { return "/r/" + r.ID() + "/" }

// PlayerURL returns the replay page on this machine.
func (r *Replay) PlayerURL() string { return r.n.HTTPURL() + r.PlayerPath() }

// HLSURL returns the VOD playlist.
func (r *Replay) HLSURL() string { return r.PlayerURL() + "hls/index.m3u8" }

// replayPage is the page of a replay: the player in replay mode, with the
// manifest's comments on the replay's timeline.
func (n *Node) replayPage(r *swarm.Replay) http.Handler {
	m, vod := r.Manifest(), r.VOD()
	comments := replayComments(n.openComments(m), vod)
	from, counts := n.openHearts(m)
	hearts := replayHearts(from, counts, vod)
	return player.New(player.Routes{
		HLS: vod,
		Status: func() player.Status {
			v := r.Views()
			st := player.Status{Title: m.Title, Ended: true, Replay: true, StartedAt: m.Started,
				Duration: vod.Duration().Seconds(), ReplayViewers: v.Total(), ReplayViewersIdentified: v.Identified}
			n.nameBroadcaster(m.Broadcast, &st) // a replay is listed until it expires; a private one is not
			return st
		},
		Comments: func() []player.Comment { return comments },
		Hearts:   func() []player.Heart { return hearts },
	})
}

// replayHearts places a replay's hearts (a count for each second from
// from) on its timeline, one entry for each second that had any (in one
// pass: a long broadcast has many).
func replayHearts(from time.Time, counts []uint32, v *hls.VOD) []player.Heart {
	var walls []time.Time
	var out []player.Heart
	for i, n := range counts {
		if n > 0 {
			walls = append(walls, from.Add(time.Duration(i)*time.Second))
			out = append(out, player.Heart{Count: n})
		}
	}
	for i, at := range v.MediaTimes(walls) {
		out[i].At = at.Seconds()
	}
	return out
}

// replayComments places the manifest's comments on the replay's timeline.
func replayComments(raw []byte, v *hls.VOD) []player.Comment {
	if len(raw) == 0 {
		return nil
	}
	log, err := chat.ParseLog(raw)
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
	r := n.swarm.Lookup(id)
	if r == nil {
		if _, _, err := link.BroadcasterOf(id); err != nil {
			http.Error(w, "not a broadcast ID", http.StatusNotFound)
			return
		}
		if !n.swarm.Holds(req.Context(), id) {
			http.Error(w, "no replay of this broadcast on this node (it may have expired)", http.StatusNotFound)
			return
		}
		var err error
		if r, err = n.swarm.Open(req.Context(), link.Link{Broadcast: id}, true); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
	}
	if r.Expired() {
		http.Error(w, "this replay has expired", http.StatusGone)
		return
	}
	http.StripPrefix("/r/"+id, r.Page()).ServeHTTP(w, req)
}

// --- a broadcast's side ---

// keep hands a delivered chunk to the replay store's queue; it never
// blocks the tree.
func (b *Broadcast) keep(c *chunk.Chunk) {
	if b.kept == nil {
		return
	}
	select {
	case b.kept <- c:
	default:
		b.keepDropped.Add(1)
	}
}

// keepChunks stores the delivered chunks for the replay: every node keeps
// what it received, the broadcaster all of its own. The end chunk's capture
// time is the broadcast's end, from which the replay's 24 hours count.
func (b *Broadcast) keepChunks() {
	st := b.n.store
	for c := range b.kept {
		if _, err := st.PutVerified(context.Background(), c); err != nil { // the tree verified it
			if !errors.Is(err, replay.ErrClosed) && b.ctx.Err() == nil {
				b.log.Debug("replay: chunk not kept", "seq", c.Seq, "err", err)
			}
			continue
		}
		if c.Flags&chunk.FlagEnd != 0 {
			if err := st.SetEnd(context.Background(), b.id, time.Unix(0, c.Wallclock)); err != nil {
				b.log.Warn("replay: end not recorded", "err", err)
			}
		}
	}
}

// sealReplay signs the manifest of an ended broadcast (on the broadcaster,
// from the chunks it recorded and the chat's comment log), keeps it and
// lists the replay in the directory. It runs before the end is announced,
// so that a viewer that hears of the end can fetch it.
func (b *Broadcast) sealReplay() {
	a := b.Announcement()
	title := a.Title
	if b.ring != nil {
		// The manifest is answered to whoever asks: a private
		// broadcast's carries no title, and its comments and hearts
		// sealed (as its chunks and inline init are).
		title = ""
	}
	m := b.recorder.Manifest(b.id, title, a.Started, nil)
	if m == nil {
		return
	}
	if b.room != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if log, err := b.room.Log(ctx); err == nil {
			m.Comments = b.sealComments(chat.MarshalLog(log))
		} else {
			b.log.Warn("replay: no comment log", "err", err)
		}
		if h, err := b.room.HeartLog(ctx); err == nil && len(h.Counts) > 0 {
			if b.ring == nil {
				m.HeartsFrom, m.Hearts = h.From, h.Counts
			} else { // sealed, as the comments: the manifest is answered to anyone
				m.SealedHearts = b.seal(heartsLabel, replay.MarshalHearts(h.From, h.Counts))
			}
		}
		cancel()
	}
	signed, err := m.Sign(b.n.key.Sign)
	if err != nil {
		b.log.Warn("replay: manifest not signed", "err", err)
		return
	}
	b.n.swarm.Keep(context.Background(), m, signed)
	b.log.Info("replay manifest signed", "chunks", len(m.Chunks), "bytes", len(signed), "duration", m.Duration())
	b.n.listReplay(b, m)
}

// awaitManifest, on a viewer, fetches the manifest once the broadcast has
// ended: from the broadcaster, its parent, then the link's peers. A node
// that relays then completes its copy.
func (b *Broadcast) awaitManifest() {
	select {
	case <-b.done:
	case <-b.ctx.Done():
		return
	}
	b.n.swarm.Await(b.ctx, swarm.Watched{
		Broadcast: b.id,
		Targets: func(ctx context.Context) []peer.ID {
			targets := []peer.ID{b.rootID}
			if st, err := b.Status(ctx); err == nil && st.Parent != "" {
				targets = append(targets, st.Parent)
			}
			for _, p := range b.link.Peers {
				targets = append(targets, p.ID)
			}
			return targets
		},
		Link:     b.link.Peers,
		Complete: b.slots > 0,
	})
}

// manifest returns the broadcast's signed replay manifest once this node
// has it.
func (b *Broadcast) manifest() (*replay.Manifest, []byte) { return b.n.swarm.Known(b.id) }

// replayStatus adds the replay's side to a broadcast page's status: the
// replay viewers (on the broadcaster) and, once ended with a manifest,
// where the replay plays.
func (b *Broadcast) replayStatus(st *player.Status) {
	v := b.n.ReplayViewsBy(b.id)
	st.ReplayViewers, st.ReplayViewersIdentified = v.Total(), v.Identified
	st.ReplayURL = b.replayPath()
}

// replayPath is the replay page's path, once this node has the manifest.
func (b *Broadcast) replayPath() string {
	if m, _ := b.manifest(); m != nil && !b.n.swarm.Expired(m) {
		return "/r/" + b.id + "/"
	}
	return ""
}

// ReplayManifest returns the broadcast's replay manifest once this node
// has it (nil before the end, or when none was found).
func (b *Broadcast) ReplayManifest() *replay.Manifest {
	m, _ := b.manifest()
	return m
}
