package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipfs/boxo/bitswap"
	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/media/player"

	"github.com/peerscope/peerscope/replay"
)

// keepQueue is how many delivered chunks may wait for the replay store
// before new ones are dropped (counted): about 200 s of 200 ms parts.
const keepQueue = 1024

// openReplay opens the node's replay store (in DataDir/replay, or a
// temporary directory removed by Close) and starts its sweeper, unless the
// node keeps no replays.
func (n *Node) openReplay() error {
	n.host.SetStreamHandler(ReplayProtocol, n.handleReplay)
	if n.cfg.NoReplays {
		// It keeps nothing and serves nothing, but may watch replays:
		// bitswap fetches into memory.
		mem := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
		n.startBitswap(mem, false)
		return nil
	}
	dir := ""
	if n.cfg.DataDir != "" {
		dir = filepath.Join(n.cfg.DataDir, "replay")
	} else {
		var err error
		if n.replayTmp, err = os.MkdirTemp("", "peerscope-replay-"); err != nil {
			return err
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
		Verify: verifyChunk,
		Now:    n.cfg.Now,
		Logger: n.log.With("part", "replay"),
	})
	if err != nil {
		return fmt.Errorf("%w: replay store: %w", ErrConfig, err)
	}
	n.replay = st
	ctx, cancel := context.WithCancel(context.Background())
	n.replayCancel = cancel
	n.replayWG.Go(func() { st.Run(ctx) })
	n.startBitswap(st.Blockstore(), true)
	return nil
}

// bitswapPrefix keeps Peerscope's bitswap apart from IPFS's on the same
// host: only replay chunks are asked for and served.
const bitswapPrefix = "/peerscope"

// startBitswap runs bitswap over the node's host, serving (when serve) the
// replay store's unexpired, sound blocks. There is no content routing: a
// replay viewer connects to the replay's swarm (link peers, holders named
// by the manifest's answerers) and bitswap asks its connected peers.
func (n *Node) startBitswap(bs blockstore.Blockstore, serve bool) {
	ctx, cancel := context.WithCancel(context.Background())
	n.bitswapCancel = cancel
	net := bsnet.NewFromIpfsHost(n.host, bsnet.Prefix(bitswapPrefix))
	n.bitswap = bitswap.New(ctx, net, nil, bs,
		bitswap.WithServerEnabled(serve),
		bitswap.WithClientOption(bsclient.WithoutDuplicatedBlockStats()))
}

// closeReplay stops the sweeper and closes the store (after the
// broadcasts, which write to it).
func (n *Node) closeReplay() {
	for _, r := range n.Replays() {
		_ = r.Close()
	}
	if n.bitswap != nil {
		_ = n.bitswap.Close()
		n.bitswapCancel()
	}
	if n.replayCancel != nil {
		n.replayCancel()
	}
	n.replayWG.Wait()
	if n.replay != nil {
		_ = n.replay.Close()
	}
	if n.replayTmp != "" {
		_ = os.RemoveAll(n.replayTmp)
	}
}

// ReplayStore returns the node's replay store (nil when it keeps none).
func (n *Node) ReplayStore() *replay.Store { return n.replay }

// verifyChunk checks a chunk against the key in its broadcast ID.
func verifyChunk(c *chunk.Chunk) error {
	_, key, err := BroadcasterOf(c.Broadcast)
	if err != nil {
		return err
	}
	return c.Verify(c.Broadcast, key)
}

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
	st := b.n.replay
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

// replayStatus adds the replay's side to a broadcast page's status: the
// replay viewers (on the broadcaster) and, once ended with a manifest,
// where the replay plays.
func (b *Broadcast) replayStatus(st *player.Status) {
	st.ReplayViewers = b.n.ReplayViews(b.id)
	st.ReplayURL = b.replayPath()
}

// replayPath is the replay page's path, once this node has the manifest.
func (b *Broadcast) replayPath() string {
	if m, _ := b.replay.get(); m != nil && !b.n.replayExpired(m) {
		return "/r/" + b.id + "/"
	}
	return ""
}

// ReplayManifest returns the broadcast's replay manifest once this node
// has it (nil before the end, or when none was found).
func (b *Broadcast) ReplayManifest() *replay.Manifest {
	m, _ := b.replay.get()
	return m
}

// replayCollector exports the replay store's state and counters.
type replayCollector struct{ n *Node }

var (
	descReplayBytes   = prometheus.NewDesc("peerscope_replay_bytes", "Bytes of replay chunks kept on disk.", nil, nil)
	descReplayChunks  = prometheus.NewDesc("peerscope_replay_chunks", "Replay chunks kept.", nil, nil)
	descReplayCasts   = prometheus.NewDesc("peerscope_replay_broadcasts", "Broadcasts with replay chunks kept.", nil, nil)
	descReplayQuota   = prometheus.NewDesc("peerscope_replay_quota_bytes", "The replay store's quota.", nil, nil)
	descReplayEvents  = prometheus.NewDesc("peerscope_replay_events_total", "What the replay store did: stored, duplicate, refused (signature or quota), expired (refused after 24 h), corrupt (failed the hash check on read), swept (deleted by the sweeper), evicted (replays dropped for the quota).", []string{"event"}, nil)
	descReplayViews   = prometheus.NewDesc("peerscope_replay_viewers", "Distinct replay viewers seen, per broadcast.", []string{"broadcast"}, nil)
	descReplayDropped = prometheus.NewDesc("peerscope_replay_keep_dropped_total", "Delivered chunks the replay store's queue could not take.", []string{"broadcast"}, nil)
)

func (replayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReplayBytes, descReplayChunks, descReplayCasts, descReplayQuota, descReplayEvents, descReplayViews, descReplayDropped} {
		ch <- d
	}
}

func (c replayCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	if st := n.replay; st != nil {
		u := st.Usage()
		ch <- prometheus.MustNewConstMetric(descReplayBytes, prometheus.GaugeValue, float64(u.Bytes))
		ch <- prometheus.MustNewConstMetric(descReplayChunks, prometheus.GaugeValue, float64(u.Chunks))
		ch <- prometheus.MustNewConstMetric(descReplayCasts, prometheus.GaugeValue, float64(u.Broadcasts))
		ch <- prometheus.MustNewConstMetric(descReplayQuota, prometheus.GaugeValue, float64(u.Quota))
		k := st.Counters()
		for _, e := range []struct {
			name string
			v    uint64
		}{{"stored", k.Put}, {"duplicate", k.Duplicate}, {"refused", k.Refused}, {"expired", k.Expired},
			{"corrupt", k.Corrupt}, {"swept", k.Swept}, {"evicted", k.Evicted}} {
			ch <- prometheus.MustNewConstMetric(descReplayEvents, prometheus.CounterValue, float64(e.v), e.name)
		}
	}
	n.mu.Lock()
	views := make(map[string]int, len(n.views))
	for id, v := range n.views {
		views[id] = len(v)
	}
	n.mu.Unlock()
	for id, v := range views {
		ch <- prometheus.MustNewConstMetric(descReplayViews, prometheus.GaugeValue, float64(v), id)
	}
	for _, b := range n.Broadcasts() {
		ch <- prometheus.MustNewConstMetric(descReplayDropped, prometheus.CounterValue, float64(b.keepDropped.Load()), b.id)
	}
}
