package node

import (
	"context"
	"sync"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/replay"
)

// replayDirectory lists this node's replays in a bootstrap's directory
// (Config.ReplayDirectory): when a broadcast ends, its broadcaster
// announces the end (the directory needs it, whether or not the live
// broadcast was announced there) and publishes the replay with a
// reference to its manifest (the manifest's CID); as replay views come in,
// it re-announces the count, at most once every dirInterval. The directory
// itself drops the replay 24 hours after the end.
type replayDirectory struct {
	n    *Node
	kick chan struct{}

	mu      sync.Mutex
	entries map[string]*dirEntry
}

type dirEntry struct {
	a         bootstrap.Announcement
	manifest  string
	published bool
	views     int
}

const dirInterval = time.Second

func (n *Node) listReplay(b *Broadcast, m *replay.Manifest) {
	d := n.dir
	if d == nil {
		return
	}
	_, signed := b.replay.get()
	a := b.Announcement()
	e := &dirEntry{
		a: bootstrap.Announcement{Title: a.Title, Link: b.Link().String(), Started: a.Started, Ended: m.Ended,
			Version: uint64(n.cfg.Now().UnixNano())},
		manifest: replay.CIDOf(signed).String(),
	}
	d.mu.Lock()
	if d.entries == nil {
		d.entries = map[string]*dirEntry{}
	}
	d.entries[b.id] = e
	d.mu.Unlock()
	d.poke()
}

func (d *replayDirectory) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// viewed notes a new replay view of one of this node's broadcasts.
func (d *replayDirectory) viewed(id string) {
	d.mu.Lock()
	_, ok := d.entries[id]
	d.mu.Unlock()
	if ok {
		d.poke()
	}
}

func (d *replayDirectory) run(ctx context.Context) {
	client := &bootstrap.Client{Base: d.n.cfg.ReplayDirectory, Key: d.n.key, Now: d.n.cfg.Now}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		d.sync(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-time.After(dirInterval):
		}
	}
}

// sync announces what changed and publishes what is not yet published.
func (d *replayDirectory) sync(ctx context.Context, c *bootstrap.Client) {
	d.mu.Lock()
	var todo []string
	for id, e := range d.entries {
		views := d.n.ReplayViews(id)
		if !e.published || views != e.views {
			todo = append(todo, id)
		}
	}
	d.mu.Unlock()
	for _, id := range todo {
		d.mu.Lock()
		e := d.entries[id]
		a := e.a
		a.ReplayViewers = d.n.ReplayViews(id)
		a.Version = max(a.Version+1, uint64(d.n.cfg.Now().UnixNano()))
		e.a.Version = a.Version
		published, ref := e.published, e.manifest
		d.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.Announce(cctx, id, a)
		if err == nil && !published {
			_, err = c.PublishReplay(cctx, id, ref)
		}
		cancel()
		if err != nil {
			d.n.log.Warn("replay: directory not updated", "broadcast", shortBroadcast(id), "err", err)
			continue
		}
		d.mu.Lock()
		e.published, e.views = true, a.ReplayViewers
		d.mu.Unlock()
		d.n.log.Info("replay listed in the directory", "broadcast", shortBroadcast(id), "replay_viewers", a.ReplayViewers)
	}
}
