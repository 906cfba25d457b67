package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/replay"
)

// replayDirectory lists this node's replays in its first bootstrap's
// directory (Config.Bootstrap; directory.go announces the live broadcast
// and its end): once a broadcast it rooted has ended and its manifest is
// signed, it publishes the replay with a reference to the manifest (the
// CID of the signed manifest), retrying until the directory has heard of
// the end; as replay views come in, it re-announces the count, at most
// once every dirInterval. The directory drops the replay 24 hours after
// the end by itself.
type replayDirectory struct {
	n    *Node
	kick chan struct{}

	mu      sync.Mutex
	entries map[string]*dirEntry
}

type dirEntry struct {
	a         api.ListingUpdate
	manifest  string
	published bool
	tries     int
	views     int
}

const (
	dirInterval = time.Second
	// dirTries bounds the attempts to publish a replay (the directory
	// refuses it until it has the end).
	dirTries = 30
)

func (n *Node) listReplay(b *Broadcast, m *replay.Manifest) {
	d := n.dir
	if d == nil || n.boot == nil {
		return
	}
	_, signed := b.replay.get()
	a := b.Announcement()
	e := &dirEntry{
		a:        api.ListingUpdate{Title: a.Title, Link: b.Link().String(), Started: a.Started, Ended: m.Ended},
		manifest: replay.CIDOf(signed).String(),
	}
	if e.a.Started.IsZero() || e.a.Started.After(e.a.Ended) {
		e.a.Started = m.Started
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		again := d.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(dirInterval):
		}
		if again {
			d.poke()
		}
	}
}

// sync publishes what is not yet published and announces changed view
// counts; it reports whether something is left to retry.
func (d *replayDirectory) sync(ctx context.Context) (again bool) {
	if d.n.boot == nil {
		return false
	}
	c := d.n.boot.client
	d.mu.Lock()
	var todo []string
	for id, e := range d.entries {
		if (!e.published && e.tries < dirTries) || (e.published && d.n.ReplayViews(id) != e.views) {
			todo = append(todo, id)
		}
	}
	d.mu.Unlock()
	for _, id := range todo {
		d.mu.Lock()
		e := d.entries[id]
		published, ref, a := e.published, e.manifest, e.a
		d.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		views := d.n.ReplayViews(id)
		if !published {
			_, err = c.PublishReplay(cctx, id, ref)
		}
		if err == nil && views > 0 {
			a.ReplayViewers = views
			a.Version = uint64(d.n.cfg.Now().UnixNano())
			_, err = c.Announce(cctx, id, a)
		}
		cancel()
		d.mu.Lock()
		if err != nil {
			e.tries++
			again = again || e.tries < dirTries
		} else {
			e.published, e.views = true, views
		}
		d.mu.Unlock()
		var ae *api.APIError
		switch {
		case err == nil:
			d.n.log.Info("replay listed in the directory", "broadcast", shortBroadcast(id), "replay_viewers", views)
		case errors.As(err, &ae) && ae.Status < 500 && !published:
			d.n.log.Debug("replay not listed yet", "broadcast", shortBroadcast(id), "err", err)
		default:
			d.n.log.Warn("replay: directory not updated", "broadcast", shortBroadcast(id), "err", err)
		}
	}
	return again
}
