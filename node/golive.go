package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/publish"
	"github.com/peerscope/peerscope/media/whip"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/mesh/stripe"
	"github.com/peerscope/peerscope/replay"
)

// LiveConfig says what a broadcast plays. Either Source is set, or RTMP
// and/or WHIP take publishers (one at a time, across both).
type LiveConfig struct {
	Title string

	// Source plays into the broadcast (a file, MPEG-TS, UDP or SRT, from
	// media/ingest); when it ends, so does the broadcast.
	Source media.Source

	// RTMP, when set, listens there (":1935") for an encoder publishing to
	// rtmp://HOST:PORT/live/KEY.
	RTMP string
	// WHIP takes a publisher at the node's /broadcast/whip (the broadcaster
	// page, or OBS's WHIP output, with "Authorization: Bearer KEY").
	WHIP bool
	// StreamKey is the key publishers must give; empty: one is generated
	// (see Broadcast.StreamKey). With a Source it is only remembered (an
	// SRT source checks its own).
	StreamKey string
	// Grace is how long a publisher that was cut off may take to come
	// back before the broadcast ends; default publish.DefaultGrace,
	// negative: end at once. A publisher that ends its stream itself ends
	// the broadcast.
	Grace time.Duration

	// Bitrate is the expected bitrate (bit/s), for sizing the tree before
	// it is measured; default Config.Bitrate.
	Bitrate int64
	// Packager tunes the CMAF packager (zero: its defaults).
	Packager cmaf.Config

	// Unlisted keeps the broadcast out of the bootstrap's directory
	// (Config.Bootstrap); Tweet asks the bootstrap to post its link on the
	// broadcaster's Twitter account when it goes live (the account must
	// have allowed posting at sign-in).
	Unlisted, Tweet bool
	// Location, when set, puts the broadcast on the directory's map at
	// this point (the bootstrap keeps it rounded to 0.1°); a WHIP
	// publisher may set or change it (?location=LAT,LON).
	Location *api.Location

	// Stripes, when not 0, stripes the broadcast (package mesh/stripe):
	// each chunk is cut into Stripes fragments and Parity more, each
	// fragment index over a tree of its own, a viewer relaying in one of
	// them and playing a chunk once any Stripes of its fragments are in.
	// Nodes before striping find no tree to join. A private broadcast's
	// fragments are cut from the sealed payload.
	Stripes, Parity int

	// Private, when set, makes the broadcast private (issue 13): every
	// chunk's payload is sealed for the audience's devices, only they get
	// into the tree, and the keys reach them through
	// Config.Private.Mailbox. A private broadcast is never listed.
	Private *Audience
}

// check refuses a LiveConfig GoLive cannot run (ErrConfig).
func (cfg *LiveConfig) check(ingest bool) error {
	switch {
	case cfg.Source != nil && ingest:
		return fmt.Errorf("%w: a broadcast plays a Source or takes publishers (RTMP, WHIP), not both", ErrConfig)
	case cfg.Source == nil && !ingest:
		return fmt.Errorf("%w: a broadcast needs a Source, RTMP or WHIP", ErrConfig)
	case cfg.Bitrate < 0:
		return fmt.Errorf("%w: negative bitrate", ErrConfig)
	case cfg.Stripes != 0 || cfg.Parity != 0:
		if err := (stripe.Spec{Data: cfg.Stripes, Parity: cfg.Parity}).Check(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if cfg.Location != nil {
		if err := cfg.Location.Check(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// GoLive starts a broadcast with this node as its root: media from cfg's
// source or publishers is cut into CMAF parts, each part becomes a chunk
// signed with the node's key (media/publish), and the chunks go down the
// tree (and to this node's own players). It returns once the tree and the
// ingest listeners are up; Close ends the broadcast.
func (n *Node) GoLive(ctx context.Context, cfg LiveConfig) (_ *Broadcast, err error) {
	ingest := cfg.RTMP != "" || cfg.WHIP
	if err := cfg.check(ingest); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ring, err := n.preparePrivate(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if cfg.StreamKey == "" && ingest {
		cfg.StreamKey = publish.NewStreamKey()
	}
	id := link.NewBroadcastID(n.host.ID())
	now := n.clock.Now()
	first, err := announce.Sign(announce.Announcement{Broadcast: id, Title: announce.CleanTitle(cfg.Title),
		Started: now, Version: uint64(now.UnixNano()), Stripes: cfg.Stripes, Parity: cfg.Parity}, n.key)
	if err != nil {
		return nil, err
	}
	b, err := n.newBroadcast(id, true, n.cfg.slotsFor(cfg.Bitrate), first, ring)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if b.pub != nil {
				b.pub.Abort()
			}
			b.teardown()
		}
	}()
	if cfg.Private != nil {
		b.caster = &caster{b: b, cfg: *cfg.Private, rand: n.cfg.Private.Rand, mb: n.cfg.Private.Mailbox}
		if err := b.listPrivate(ctx, cfg.Title, now); err != nil {
			return nil, err
		}
		if err := b.caster.start(ctx, cfg.Private.Members); err != nil {
			return nil, err
		}
		b.gate.setRoster(b.caster.currentRoster())
	}
	if err := b.startPublisher(cfg); err != nil {
		return nil, err
	}
	if err := b.startTree(p2p.Info(n.host)); err != nil {
		return nil, err
	}
	if b.caster != nil {
		b.wg.Go(b.caster.run)
	}
	if cfg.RTMP != "" {
		if err := b.pub.ListenRTMP(cfg.RTMP); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if cfg.WHIP {
		if err := n.ensureWHIP(); err != nil {
			return nil, err
		}
	}
	if cfg.Location != nil && cfg.Private == nil {
		l := cfg.Location.Coarse()
		b.location.Store(&l)
	}
	b.listed = !cfg.Unlisted && n.community.HasBootstrap() // before add: the go-live page reads it
	if b.listed && b.caster == nil {
		b.stiller = b.newKeyframeStiller() // before the first chunk
	}
	if err := n.add(b); err != nil {
		return nil, err
	}
	if cfg.Source != nil {
		b.pub.Play(cfg.Source)
	}
	if !cfg.Unlisted || (b.caster != nil && n.bootMailbox) {
		// A private one, as private: its members' invitations. A public
		// one that waits for its publisher is listed, and its followers
		// told it is live, only once its video flows: a phone that never
		// gets to press Go live leaves no LIVE entry behind.
		b.listInDirectory(cfg.Tweet, ingest && b.caster == nil)
	}
	b.log.Info("broadcasting", "title", cfg.Title, "slots", b.slots, "player", b.URLs().Player)
	return b, nil
}

// preparePrivate checks what a private broadcast (cfg.Private) needs
// before anything starts — a mailbox, and at a bootstrap a sign-in there —
// fills its defaults, and returns the keyring its epochs go in (nil for a
// public broadcast). A private broadcast is never in the public directory
// (listPrivate lists it as private where its keys wait).
func (n *Node) preparePrivate(ctx context.Context, cfg *LiveConfig) (*keyring, error) {
	if cfg.Private == nil {
		return nil, nil
	}
	a := *cfg.Private
	if err := a.fill(); err != nil {
		return nil, err
	}
	if n.cfg.Private.Mailbox == nil {
		return nil, ErrNoMailbox
	}
	if n.bootMailbox {
		// The bootstrap keeps rosters and bundles for signed-in
		// broadcasters only: say so now, not at the first roster.
		if err := n.community.SignedIn(ctx); err != nil {
			return nil, communityErr(err)
		}
	}
	cfg.Private, cfg.Unlisted, cfg.Tweet = &a, true, false
	return newKeyring(), nil
}

// listPrivate lists a private broadcast at the bootstrap that keeps its
// keys, as private (out of its directory, its stream and search; its
// members' invitations come from it): the bootstrap takes a roster only
// for a broadcast listed so, so this comes before the first roster.
func (b *Broadcast) listPrivate(ctx context.Context, title string, now time.Time) error {
	if !b.n.bootMailbox {
		return nil
	}
	u := api.ListingUpdate{Title: announce.CleanTitle(title), Link: b.Link().String(), Started: now,
		Version: uint64(now.UnixNano()), Private: true}
	if err := b.n.community.Announce(ctx, b.id, u); err != nil {
		return fmt.Errorf("listing the private broadcast at the bootstrap: %w", communityErr(err))
	}
	return nil
}

// startPublisher makes the broadcaster's publisher, with the node's hooks:
// each signed chunk is recorded for the replay and published into the tree,
// and what the announcement should say goes to announced.
func (b *Broadcast) startPublisher(cfg LiveConfig) error {
	signer, err := p2p.HostSigner(b.n.host)
	if err != nil {
		return err
	}
	b.recorder = &replay.Recorder{}
	b.streamKey, b.takesWHIP = cfg.StreamKey, cfg.WHIP
	var seal func(*chunk.Chunk) error
	if b.caster != nil {
		seal = b.caster.seal
	}
	b.pub, err = publish.New(publish.Config{
		Seal:      seal,
		Broadcast: b.id,
		Signer:    signer,
		StreamKey: cfg.StreamKey,
		Packager:  cfg.Packager,
		Grace:     cfg.Grace,
		Stripes:   cfg.Stripes,
		Parity:    cfg.Parity,
		Clock:     b.n.clock,
		Logger:    b.log,
		Publish: func(c *chunk.Chunk) error {
			if !c.IsInit() {
				b.flowOnce.Do(func() { close(b.flowing) })
			}
			if b.stiller != nil {
				b.stiller.see(c)
			}
			return b.carrier.Publish(b.ctx, c)
		},
		Record:   b.recorder.Record,
		Announce: b.announced,
		Live:     func(proto string) { b.n.metrics.ingestStarted(b.id, proto) },
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// announced carries a change the publisher reports into the announcement.
// The end seals the replay's manifest first, so that a viewer that hears of
// the end can fetch it.
func (b *Broadcast) announced(c publish.Change) {
	switch {
	case c.Ended:
		b.sealReplay()
		b.update("the end", func(a *announce.Announcement) bool { a.Ended = true; return true })
		b.call(b.setEnded)
	case c.Title != "":
		title := announce.CleanTitle(c.Title)
		b.update("the title", func(a *announce.Announcement) bool {
			changed := title != "" && title != a.Title
			a.Title = title
			return changed
		})
	case c.Bitrate > 0:
		b.update("the bitrate", func(a *announce.Announcement) bool { a.Bitrate = c.Bitrate; return true })
		b.call(func() { b.bitrateSeen(c.Bitrate, false) })
	}
}

// update changes the announcement (when change says it changed it), signs
// it with a higher version and keeps it for whoever asks (owner).
func (b *Broadcast) update(what string, change func(*announce.Announcement) bool) {
	var err error
	b.call(func() {
		cur := b.st.ann
		next := cur.Announcement
		if !change(&next) {
			return
		}
		next.Version = max(cur.Version+1, uint64(b.n.clock.Now().UnixNano()))
		var s announce.Signed
		if s, err = announce.Sign(next, b.n.key); err == nil {
			b.offer(s)
		}
	})
	if err != nil {
		b.log.Warn("announce "+what, "err", err)
	}
}

// ensureWHIP makes the node's WHIP endpoint on first use: a publisher's
// stream key names its broadcast.
func (n *Node) ensureWHIP() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if n.whip != nil {
		return nil
	}
	wh, err := whip.New(whip.Config{
		Authorize: n.authorizeWHIP,
		Publish: func(key string, info whip.Info) (media.Sink, error) {
			p, err := n.publisherFor(key)
			if err != nil {
				return nil, err
			}
			return p.Publish("whip", info.Title)
		},
		Unpublish: func(key string, err error) {
			if p, e := n.publisherFor(key); e == nil {
				p.Unpublish(err)
			}
		},
		UDPPort: n.cfg.WHIPUDPPort,
		Logger:  n.log.With("part", "whip"),
	})
	if err != nil {
		return err
	}
	n.whip = wh
	return nil
}

// authorizeWHIP admits a WHIP publisher by its key. A key that is right
// but cannot publish now is told why (whip.ErrBusy: 409, whip.ErrEnded:
// 410), so that a second tab or a quick reconnect is not told its key is
// wrong.
func (n *Node) authorizeWHIP(key string) error {
	p, err := n.publisherFor(key)
	if err != nil {
		return err
	}
	err = p.Admit()
	switch {
	case errors.Is(err, publish.ErrBusy):
		return fmt.Errorf("%w: %w", whip.ErrBusy, err)
	case errors.Is(err, publish.ErrEnded):
		return fmt.Errorf("%w: %w", whip.ErrEnded, err)
	}
	return err
}

// publisherFor finds the publisher of the broadcast that takes WHIP with
// key (compared in constant time: byKeyLocked).
func (n *Node) publisherFor(key string) (*publish.Publisher, error) {
	b := n.whipBroadcast(key)
	if b == nil {
		return nil, publish.ErrStreamKey
	}
	return b.pub, nil
}

// whipBroadcast returns the broadcast that takes WHIP with key (compared
// in constant time: byKeyLocked), or nil: what the key opens, to WHIP and
// to the go-live page.
func (n *Node) whipBroadcast(key string) *Broadcast {
	n.mu.Lock()
	b := n.byKeyLocked(key)
	n.mu.Unlock()
	if b == nil || !b.takesWHIP {
		return nil
	}
	return b
}

// secureURL is the HTTPS server's URL, or the HTTP one without HTTPS
// (localhost is a secure origin too).
func (n *Node) secureURL() string {
	if u := n.HTTPSURL(); u != "" {
		return u
	}
	return n.HTTPURL()
}
