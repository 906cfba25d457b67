package community

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Live is a broadcast this node roots, as its listing in the directory
// needs it.
type Live struct {
	ID string
	// Tweet asks the bootstrap to post the link when the broadcast first
	// goes live (the broadcaster signed in allowing it).
	Tweet bool
	// Entry says what to list now: title, link, start, live and replay
	// viewers. The community sets the version, the end and Tweet.
	Entry func() api.ListingUpdate
	// Ended is closed when the broadcast ends.
	Ended <-chan struct{}
	// Stills, optional, brings new stills of the broadcast (JPEGs that
	// api.CheckThumbnail takes) for its card in the directory; each is
	// sent once the listing is there.
	Stills <-chan []byte
}

// ListLive lists b in the first bootstrap's directory, signed with the
// node's key (which b's ID names), renews the listing with fresh counts
// every ListingInterval, and lists its end when b.Ended closes or ctx ends
// (a closing node ends the broadcasts it roots); it returns then. Without
// a bootstrap it returns at once. Refusals are logged: the broadcast goes
// on without its listing.
func (c *Community) ListLive(ctx context.Context, b Live) {
	if c.client == nil {
		return
	}
	var version uint64
	placeless := false // the bootstrap predates listings' locations
	stillless := false // the bootstrap predates thumbnails
	sendStill := func(ctx context.Context, jpeg []byte) {
		if stillless {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := c.client.PutThumbnail(ctx, b.ID, jpeg)
		var ae *api.APIError
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.Status == 404 && strings.Contains(ae.Message, "no such endpoint"):
			// An older bootstrap: the card keeps its initials.
			c.log.Warn("the bootstrap keeps no thumbnails (an older version): listed without one", "broadcast", short(b.ID))
			stillless = true
		default:
			c.log.Warn("directory thumbnail", "broadcast", short(b.ID), "err", err)
		}
	}
	announce := func(ctx context.Context, ended bool) {
		u := b.Entry()
		if placeless {
			u.Location = nil
		}
		now := c.clock.Now()
		if u.Started.IsZero() {
			u.Started = now
		}
		if ended {
			u.Ended = now
			if u.Ended.Before(u.Started) {
				u.Ended = u.Started
			}
		}
		u.Tweet = b.Tweet && version == 0
		version = max(version+1, uint64(now.UnixNano()))
		u.Version = version
		_, err := c.client.Announce(ctx, b.ID, u)
		if err != nil && u.Location != nil && oldDirectory(err) {
			// An older bootstrap refuses the field it does not know:
			// the broadcast is listed, off the map.
			c.log.Warn("the bootstrap keeps no locations (an older version): listed without one", "broadcast", short(b.ID))
			placeless = true
			u.Location = nil
			version++
			u.Version = version
			_, err = c.client.Announce(ctx, b.ID, u)
		}
		if err != nil {
			c.log.Warn("directory announcement", "broadcast", short(b.ID), "ended", ended, "err", err)
		}
	}
	timed := func(parent context.Context, d time.Duration, ended bool) {
		actx, cancel := context.WithTimeout(parent, d)
		defer cancel()
		announce(actx, ended)
	}
	timed(ctx, 10*time.Second, false)
	t := c.clock.NewTicker(c.cfg.ListingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			timed(ctx, 10*time.Second, false)
		case jpeg := <-b.Stills:
			sendStill(ctx, jpeg)
		case <-c.identityChanged():
			// Signed in or out: the bootstrap names the broadcaster from
			// the session it finds at each announcement.
			timed(ctx, 10*time.Second, false)
		case <-b.Ended:
			timed(context.Background(), 5*time.Second, true)
			return
		case <-ctx.Done():
			// Closing: the broadcast ends with its root.
			timed(context.Background(), 5*time.Second, true)
			return
		}
	}
}

// oldDirectory reports whether err is a bootstrap's refusal of a listing's
// location field as unknown (it predates the field).
func oldDirectory(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == 400 && strings.Contains(ae.Message, `unknown field "location"`)
}

// Announce lists one update of a broadcast this node roots in the first
// bootstrap's directory, signed with the node's key, and returns its
// refusal: what a private broadcast does before its first roster, which
// the bootstrap takes only for a broadcast listed as private. ListLive
// then renews it (its versions come after u's when u's is now's UnixNano).
func (c *Community) Announce(ctx context.Context, id string, u api.ListingUpdate) error {
	if c.client == nil {
		return ErrNoBootstrap
	}
	_, err := c.client.Announce(ctx, id, u)
	return err
}

// PublishReplay lists an ended broadcast this node rooted as replayable
// in its first bootstrap's directory, until 24 h after its end; manifest
// is how viewers find it (its CID, say).
func (c *Community) PublishReplay(ctx context.Context, id, manifest string) error {
	if c.client == nil {
		return ErrNoBootstrap
	}
	_, err := c.client.PublishReplay(ctx, id, manifest)
	return err
}

// ListReplay has the replay lister publish a broadcast's replay once the
// directory takes it: u is its listing (title, link, start, end), manifest
// the reference to its signed manifest. It does not wait.
func (c *Community) ListReplay(id string, u api.ListingUpdate, manifest string) {
	if c.replays != nil {
		c.replays.add(id, u, manifest)
	}
}

// ReplayViewed tells the replay lister that a replay of broadcast id was
// viewed by someone new: its listing's count is renewed.
func (c *Community) ReplayViewed(id string) {
	if c.replays != nil {
		c.replays.viewed(id)
	}
}

// replayLister lists this node's replays in its first bootstrap's
// directory (ListLive lists the live broadcast and its end): once a
// broadcast it rooted has ended and its manifest is signed, it publishes
// the replay with a reference to the manifest, retrying until the
// directory has heard of the end; as replay views come in, it renews the
// count, at most once every replayInterval. The directory drops the replay
// 24 hours after the end by itself.
type replayLister struct {
	c    *Community
	kick chan struct{}

	mu      sync.Mutex
	entries map[string]*replayEntry
}

type replayEntry struct {
	u         api.ListingUpdate
	manifest  string
	published bool
	tries     int
	views     int
	ident     int // of views, identified (as last announced)
}

const (
	replayInterval = time.Second
	// replayTries bounds the attempts to publish a replay (the directory
	// refuses it until it has the end).
	replayTries = 30
)

func newReplayLister(c *Community) *replayLister {
	return &replayLister{c: c, kick: make(chan struct{}, 1), entries: map[string]*replayEntry{}}
}

func (d *replayLister) add(id string, u api.ListingUpdate, manifest string) {
	d.mu.Lock()
	d.entries[id] = &replayEntry{u: u, manifest: manifest}
	d.mu.Unlock()
	d.poke()
}

func (d *replayLister) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *replayLister) viewed(id string) {
	d.mu.Lock()
	_, ok := d.entries[id]
	d.mu.Unlock()
	if ok {
		d.poke()
	}
}

func (d *replayLister) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		again := d.sync(ctx)
		if d.c.clock.Sleep(ctx, replayInterval) != nil {
			return
		}
		if again {
			d.poke()
		}
	}
}

// sync publishes what is not yet published and announces changed view
// counts; it reports whether something is left to retry.
func (d *replayLister) sync(ctx context.Context) (again bool) {
	views, ident := d.c.cfg.Node.ReplayViews, d.c.cfg.Node.ReplayViewsIdentified
	d.mu.Lock()
	var todo []string
	for id, e := range d.entries {
		if (!e.published && e.tries < replayTries) || (e.published && (views(id) != e.views || ident(id) != e.ident)) {
			todo = append(todo, id)
		}
	}
	d.mu.Unlock()
	for _, id := range todo {
		if d.syncOne(ctx, id) {
			again = true
		}
	}
	return again
}

// syncOne publishes one replay or renews its count; it reports whether to
// try again.
func (d *replayLister) syncOne(ctx context.Context, id string) (again bool) {
	c := d.c
	d.mu.Lock()
	e := d.entries[id]
	published, ref, u := e.published, e.manifest, e.u
	d.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	views, ident := c.cfg.Node.ReplayViews(id), c.cfg.Node.ReplayViewsIdentified(id)
	if !published {
		_, err = c.client.PublishReplay(cctx, id, ref)
	}
	if err == nil && views > 0 {
		u.ReplayViewers, u.ReplayViewersIdentified = views, min(ident, views)
		u.Version = uint64(c.clock.Now().UnixNano())
		_, err = c.client.Announce(cctx, id, u)
	}
	d.mu.Lock()
	if err != nil {
		e.tries++
		again = e.tries < replayTries
	} else {
		e.published, e.views, e.ident = true, views, ident
	}
	d.mu.Unlock()
	var ae *api.APIError
	switch {
	case err == nil:
		c.log.Info("replay listed in the directory", "broadcast", short(id), "replay_viewers", views)
	case errors.As(err, &ae) && ae.Status < 500 && !published:
		c.log.Debug("replay not listed yet", "broadcast", short(id), "err", err)
	default:
		c.log.Warn("replay: directory not updated", "broadcast", short(id), "err", err)
	}
	return again
}

// short is a broadcast ID as logs show it: its last 16 characters.
func short(id string) string {
	if len(id) > 16 {
		return "…" + id[len(id)-16:]
	}
	return id
}
