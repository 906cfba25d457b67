package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/rtmp"
	"github.com/peerscope/peerscope/media/whip"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/replay"
)

// DefaultGrace is how long a publisher that was cut off (not one that
// ended its stream) may take to come back before the broadcast ends.
const DefaultGrace = 10 * time.Second

// BroadcastConfig says what a broadcast plays. Either Source is set, or
// RTMP and/or WHIP take publishers (one at a time, across both).
type BroadcastConfig struct {
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
	// (see StreamKey). With a Source it is only remembered (an SRT source
	// checks its own).
	StreamKey string
	// Grace is how long a publisher that was cut off may take to come
	// back before the broadcast ends; default DefaultGrace, negative: end
	// at once. A publisher that ends its stream itself ends the broadcast.
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
}

// NewStreamKey returns a random stream key: 20 characters, letters and
// digits, easy to paste into an encoder.
func NewStreamKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return link.Encoding.EncodeToString(b[:])
}

// Broadcast starts a broadcast with this node as its root: media from
// cfg's source or publishers is cut into CMAF parts, each part becomes a
// chunk signed with the node's key, and the chunks go down the tree (and
// to this node's own players). It returns once the tree and the ingest
// listeners are up; Close ends the broadcast.
func (n *Node) Broadcast(ctx context.Context, cfg BroadcastConfig) (_ *Broadcast, err error) {
	ingest := cfg.RTMP != "" || cfg.WHIP
	switch {
	case cfg.Source != nil && ingest:
		return nil, fmt.Errorf("%w: a broadcast plays a Source or takes publishers (RTMP, WHIP), not both", ErrConfig)
	case cfg.Source == nil && !ingest:
		return nil, fmt.Errorf("%w: a broadcast needs a Source, RTMP or WHIP", ErrConfig)
	case cfg.Bitrate < 0:
		return nil, fmt.Errorf("%w: negative bitrate", ErrConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.StreamKey == "" && ingest {
		cfg.StreamKey = NewStreamKey()
	}
	id := link.NewBroadcastID(n.host.ID())
	b, err := n.newBroadcast(id, true, n.cfg.slotsFor(cfg.Bitrate))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if b.pub != nil {
				b.pub.abort()
			}
			b.teardown()
		}
	}()
	signer, err := p2p.HostSigner(n.host)
	if err != nil {
		return nil, err
	}
	p := &publisher{b: b, cfg: cfg, key: cfg.StreamKey, signer: signer, priv: n.key}
	p.srcCtx, p.srcCancel = context.WithCancel(b.ctx)
	pcfg := cfg.Packager
	if pcfg.Logger == nil {
		pcfg.Logger = b.log.With("part", "cmaf")
	}
	if p.pkg, err = cmaf.New(pcfg, p.emit); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	b.pub = p
	b.recorder = &replay.Recorder{}
	now := time.Now()
	if err := p.announce(func(a *announce.Announcement) {
		*a = announce.Announcement{Broadcast: id, Title: announce.CleanTitle(cfg.Title), Started: now}
	}); err != nil {
		return nil, err
	}
	if err := b.startTree(p2p.Info(n.host)); err != nil {
		return nil, err
	}
	if cfg.RTMP != "" {
		if err := p.listenRTMP(cfg.RTMP); err != nil {
			return nil, err
		}
	}
	if cfg.WHIP {
		if err := n.ensureWHIP(); err != nil {
			return nil, err
		}
	}
	if err := n.add(b); err != nil {
		return nil, err
	}
	if cfg.Source != nil {
		p.play(cfg.Source)
	}
	if !cfg.Unlisted {
		b.listInDirectory(cfg.Tweet)
	}
	b.log.Info("broadcasting", "title", cfg.Title, "slots", b.slots, "player", b.PlayerURL())
	return b, nil
}

// publisher is the broadcaster's side of a broadcast: it owns the packager
// and the chunk sequence, and admits one publisher at a time.
type publisher struct {
	b      *Broadcast
	cfg    BroadcastConfig
	key    string
	signer *chunk.Signer
	priv   crypto.PrivKey

	srcCtx    context.Context
	srcCancel context.CancelFunc
	srcWG     sync.WaitGroup

	rtmp   *rtmp.Server
	rtmpLn net.Listener
	rtmpWG sync.WaitGroup

	// mu serializes the packager (a media.Sink is used by one goroutine at
	// a time, and sessions come and go on different ones) and the chunks.
	mu          sync.Mutex
	pkg         *cmaf.Packager
	hold        *[]cmaf.Output // while ending: outputs kept to flag the last
	seq         uint64         // the next media chunk's
	initSeq     uint64
	haveInit    bool
	started     bool   // the packager has had tracks
	live        string // the protocol of the live publisher, "" when none
	gen         int    // grows with every publisher: a stale one's sink refuses
	parts       int    // parts of the live publisher
	grace       *time.Timer
	ended       bool
	err         error // why a source stopped early
	rateBytes   int64
	rateDur     time.Duration
	lastRateSet time.Time
}

// play runs a source into the broadcast; its end is the broadcast's.
func (p *publisher) play(src media.Source) {
	p.mu.Lock()
	p.live, p.gen = "source", p.gen+1
	gen := p.gen
	p.mu.Unlock()
	p.b.n.metrics.ingestStarted(p.b.id, "source")
	p.srcWG.Go(func() {
		err := src.Run(p.srcCtx, ingestSink{p, gen})
		p.mu.Lock()
		defer p.mu.Unlock()
		p.live = ""
		switch {
		case err == nil:
			p.b.log.Info("the source ended")
		case p.srcCtx.Err() != nil || errors.Is(err, ErrEnded):
		default:
			p.err = err
			p.b.log.Warn("the source failed", "err", err)
		}
		p.endLocked()
	})
}

// stop ends the ingest and the broadcast (Close).
func (p *publisher) stop() {
	p.srcCancel()
	p.srcWG.Wait()
	if p.rtmp != nil {
		_ = p.rtmp.Close()
		p.rtmpWG.Wait()
	}
	p.mu.Lock()
	p.endLocked()
	if p.grace != nil {
		p.grace.Stop()
	}
	p.mu.Unlock()
}

// abort stops the ingest of a broadcast that failed to start.
func (p *publisher) abort() {
	p.srcCancel()
	if p.rtmp != nil {
		_ = p.rtmp.Close()
		p.rtmpWG.Wait()
	}
}

// ingestSink is one publisher's way into the packager.
type ingestSink struct {
	p   *publisher
	gen int
}

func (s ingestSink) Tracks(tracks []media.Track) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(s.gen); err != nil {
		return err
	}
	p.started = true
	return p.pkg.Tracks(tracks)
}

func (s ingestSink) Sample(smp media.Sample) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(s.gen); err != nil {
		return err
	}
	return p.pkg.Sample(smp)
}

func (p *publisher) usable(gen int) error {
	switch {
	case p.ended:
		return ErrEnded
	case gen != p.gen:
		return fmt.Errorf("%w: this publisher was replaced", ErrBusy)
	}
	return nil
}

// emit is the packager's output: each init and part becomes a chunk.
func (p *publisher) emit(o cmaf.Output) error {
	if p.hold != nil {
		*p.hold = append(*p.hold, o)
		return nil
	}
	return p.send(o, false)
}

// send signs and publishes one output; end flags the last part.
func (p *publisher) send(o cmaf.Output, end bool) error {
	c := &chunk.Chunk{Broadcast: p.b.id, Seq: p.seq}
	if o.Init != nil {
		// An init carries the Seq of the first part it applies to.
		if p.haveInit && p.initSeq == p.seq {
			p.b.log.Warn("a second init segment before any part: the tree keeps the first", "seq", p.seq)
		}
		p.initSeq, p.haveInit = p.seq, true
		c.Flags = chunk.FlagInit
		c.Wallclock = time.Now().UnixNano()
		c.Payload = o.Init
		p.b.log.Info("init segment", "seq", c.Seq, "codecs", o.Codecs)
	} else {
		p.seq++
		p.parts++
		c.Wallclock = o.Part.Wallclock.UnixNano()
		c.Duration = int64(o.Part.Duration)
		c.Payload = o.Part.Payload
		if o.Part.Independent {
			c.Flags |= chunk.FlagKeyframe
		}
		p.measure(o.Part)
	}
	if end {
		c.Flags |= chunk.FlagEnd
	}
	p.signer.Sign(c)
	p.b.recorder.Record(c)
	if err := p.b.tree.Publish(p.b.ctx, c); err != nil {
		return fmt.Errorf("%w: %w", ErrEnded, err)
	}
	return nil
}

// endLocked flushes the packager, flags the last chunk as the end (or sends
// an empty end chunk) and announces the end. p.mu is held.
func (p *publisher) endLocked() {
	if p.ended {
		return
	}
	var held []cmaf.Output
	if p.started {
		p.hold = &held
		if err := p.pkg.Flush(); err != nil {
			p.b.log.Warn("flush at the end", "err", err)
		}
		p.hold = nil
	}
	last := -1
	for i, o := range held {
		if o.Init == nil {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		if err := p.send(held[i], i == last); err != nil {
			p.b.log.Warn("the last parts were not sent", "err", err)
			break
		}
	}
	if last < 0 {
		c := &chunk.Chunk{Broadcast: p.b.id, Seq: p.seq, Wallclock: time.Now().UnixNano(), Flags: chunk.FlagEnd}
		p.signer.Sign(c)
		p.b.recorder.Record(c)
		if err := p.b.tree.Publish(p.b.ctx, c); err != nil {
			p.b.log.Warn("the end chunk was not sent", "err", err)
		}
	}
	p.ended = true
	p.live = ""
	p.b.sealReplay() // before the end is announced: viewers then fetch it
	if err := p.announce(func(a *announce.Announcement) { a.Ended = true }); err != nil {
		p.b.log.Warn("announce the end", "err", err)
	}
	p.b.log.Info("broadcast ended", "chunks", p.seq)
	p.b.markDone()
}

// announce changes the announcement, signs it with a higher version and
// keeps it for whoever asks.
func (p *publisher) announce(change func(*announce.Announcement)) error {
	a, _ := p.b.signed()
	next := a.Announcement
	change(&next)
	next.Version = max(a.Version+1, uint64(time.Now().UnixNano()))
	s, err := announce.Sign(next, p.priv)
	if err != nil {
		return err
	}
	p.b.offer(s)
	return nil
}

// measure keeps the announced bitrate near the measured one: it is
// re-announced when it moved by a quarter, at most every 10 s.
func (p *publisher) measure(part media.Part) {
	p.rateBytes += int64(len(part.Payload))
	p.rateDur += part.Duration
	if p.rateDur < 10*time.Second && (p.rateDur < 2*time.Second || !p.lastRateSet.IsZero()) {
		return
	}
	rate := p.rateBytes * 8 * int64(time.Second) / int64(p.rateDur)
	p.rateBytes, p.rateDur = 0, 0
	cur := p.b.Announcement().Bitrate
	if cur > 0 && rate*4 > cur*3 && rate*4 < cur*5 {
		return
	}
	p.lastRateSet = time.Now()
	if err := p.announce(func(a *announce.Announcement) { a.Bitrate = rate }); err != nil {
		p.b.log.Warn("announce the bitrate", "err", err)
	}
}

// --- publishers over RTMP and WHIP ---

// admit says whether a publisher may start now.
func (p *publisher) admit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitLocked()
}

func (p *publisher) admitLocked() error {
	switch {
	case p.ended:
		return ErrEnded
	case p.live != "":
		return fmt.Errorf("%w (over %s)", ErrBusy, p.live)
	}
	return nil
}

// publish starts a publisher's session.
func (p *publisher) publish(proto, title string) (media.Sink, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.admitLocked(); err != nil {
		return nil, err
	}
	if p.grace != nil {
		p.grace.Stop()
		p.grace = nil
	}
	p.live, p.gen, p.parts = proto, p.gen+1, 0
	if title = announce.CleanTitle(title); title != "" && title != p.b.Announcement().Title {
		if err := p.announce(func(a *announce.Announcement) { a.Title = title }); err != nil {
			p.b.log.Warn("announce the title", "err", err)
		}
	}
	p.b.n.metrics.ingestStarted(p.b.id, proto)
	p.b.log.Info("publisher live", "over", proto)
	return ingestSink{p, p.gen}, nil
}

// unpublish ends a publisher's session: a publisher that ended its stream
// ends the broadcast; one that was cut off has Grace to come back.
func (p *publisher) unpublish(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == "" || p.ended {
		return
	}
	proto, parts := p.live, p.parts
	p.live = ""
	p.gen++ // the gone publisher's sink refuses from now on
	switch {
	case cause == nil || errors.Is(cause, whip.ErrClosed) || p.cfg.Grace < 0:
		p.b.log.Info("publisher left", "over", proto, "err", cause)
		p.endLocked()
	case parts == 0:
		// It never got going (no camera, no keyframe): nothing to end.
		p.b.log.Info("publisher gone before any media", "over", proto, "err", cause)
	default:
		p.b.log.Info("publisher cut off; waiting for it to come back", "over", proto, "err", cause, "grace", p.cfg.Grace)
		if p.started {
			if err := p.pkg.Flush(); err != nil {
				p.b.log.Warn("flush", "err", err)
			}
		}
		gen := p.gen
		p.grace = time.AfterFunc(p.cfg.Grace, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.gen == gen && p.live == "" {
				p.b.log.Info("the publisher did not come back")
				p.endLocked()
			}
		})
	}
}

func (p *publisher) listenRTMP(addr string) error {
	srv, err := rtmp.New(rtmp.Config{
		Authorize: func(key string) error {
			if key != p.key {
				return ErrStreamKey
			}
			return p.admit()
		},
		Publish:   func(string) (media.Sink, error) { return p.publish("rtmp", "") },
		Unpublish: func(_ string, err error) { p.unpublish(err) },
		Logger:    p.b.log.With("part", "rtmp"),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w: RTMP: %w", ErrConfig, err)
	}
	p.rtmp, p.rtmpLn = srv, ln
	p.rtmpWG.Go(func() { _ = srv.Serve(ln) })
	return nil
}

// ensureWHIP makes the node's WHIP endpoint on first use.
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
			return p.publish("whip", info.Title)
		},
		Unpublish: func(key string, err error) {
			if p, e := n.publisherFor(key); e == nil {
				p.unpublish(err)
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

func (n *Node) authorizeWHIP(key string) error {
	p, err := n.publisherFor(key)
	if err != nil {
		return err
	}
	return p.admit()
}

// publisherFor finds the broadcast that takes WHIP with key.
func (n *Node) publisherFor(key string) (*publisher, error) {
	n.mu.Lock()
	b := n.keys[key]
	n.mu.Unlock()
	if b == nil || !b.pub.cfg.WHIP {
		return nil, ErrStreamKey
	}
	return b.pub, nil
}

// StreamKey returns the key publishers give ("" on a viewer).
func (b *Broadcast) StreamKey() string {
	if b.pub == nil {
		return ""
	}
	return b.pub.key
}

// RTMPAddr returns where the RTMP ingest listens (nil when it does not).
func (b *Broadcast) RTMPAddr() net.Addr {
	if b.pub == nil || b.pub.rtmpLn == nil {
		return nil
	}
	return b.pub.rtmpLn.Addr()
}

// RTMPURL returns the URL an encoder on this machine publishes to, key
// included ("" without RTMP ingest).
func (b *Broadcast) RTMPURL() string {
	a := b.RTMPAddr()
	if a == nil {
		return ""
	}
	return "rtmp://" + localHostPort(a, false) + "/live/" + b.pub.key
}

// WHIPURL returns the WHIP endpoint publishers post to, with
// "Authorization: Bearer KEY" ("" without WHIP ingest).
func (b *Broadcast) WHIPURL() string {
	if b.pub == nil || !b.pub.cfg.WHIP {
		return ""
	}
	return b.n.secureURL() + "/broadcast/whip"
}

// BroadcasterPageURL returns the page to go live from in a browser, the
// key in its fragment ("" without WHIP ingest). It is on the HTTPS server
// (what a phone needs for its camera) when there is one.
func (b *Broadcast) BroadcasterPageURL() string {
	if b.WHIPURL() == "" {
		return ""
	}
	frag := url.Values{"key": {b.pub.key}}
	if t := b.Title(); t != "" {
		frag.Set("title", t)
	}
	return b.n.secureURL() + "/broadcast/#" + frag.Encode()
}

// secureURL is the HTTPS server's URL, or the HTTP one without HTTPS
// (localhost is a secure origin too).
func (n *Node) secureURL() string {
	if u := n.HTTPSURL(); u != "" {
		return u
	}
	return n.HTTPURL()
}

// Err returns why the broadcast's source stopped before its end (bad
// input), or nil.
func (b *Broadcast) Err() error {
	if b.pub == nil {
		return nil
	}
	b.pub.mu.Lock()
	defer b.pub.mu.Unlock()
	return b.pub.err
}

// Publishing reports over which protocol a publisher is live ("rtmp",
// "whip", "source"), or "".
func (b *Broadcast) Publishing() string {
	if b.pub == nil {
		return ""
	}
	b.pub.mu.Lock()
	defer b.pub.mu.Unlock()
	return b.pub.live
}
