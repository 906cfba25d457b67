package publish

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/rtmp"
	"github.com/peerscope/peerscope/media/whip"
)

// Errors, wrapped with their detail, for errors.Is.
var (
	// ErrStreamKey refuses a publisher whose stream key is not the
	// broadcast's.
	ErrStreamKey = errors.New("publish: unknown stream key")
	// ErrBusy refuses a second publisher while one is live (over RTMP and
	// WHIP together), and the sink of one that was replaced.
	ErrBusy = errors.New("publish: a publisher is already live on this broadcast")
	// ErrEnded refuses a publisher, or media, once the broadcast has ended.
	ErrEnded = errors.New("publish: the broadcast has ended")
)

// DefaultGrace is how long a publisher that was cut off (not one that
// ended its stream) may take to come back before the broadcast ends.
const DefaultGrace = 10 * time.Second

// The bitrate is measured over at least rateMin of media (rateMax once it
// has been announced), and re-announced when it moved by a quarter.
const (
	rateMin = 2 * time.Second
	rateMax = 10 * time.Second
)

// Change is what the broadcast's announcement should now say; zero fields
// leave it as it is.
type Change struct {
	// Title is a publisher's title, as it gave it (the announcer cleans
	// it, and keeps the one it has when the cleaned title is empty or the
	// same).
	Title string
	// Bitrate is the measured bit/s.
	Bitrate int64
	// Ended: the broadcast is over; its last chunk has gone out.
	Ended bool
}

// Config is what a Publisher works with. Broadcast, Signer, Publish and
// Announce are required.
type Config struct {
	Broadcast string        // the broadcast ID every chunk carries
	Signer    *chunk.Signer // the broadcaster's key
	StreamKey string        // what an RTMP publisher must give (ListenRTMP)
	Packager  cmaf.Config   // zero: the packager's defaults
	Grace     time.Duration // default DefaultGrace; negative: a cut-off publisher ends the broadcast at once
	Clock     clock.Clock   // capture time of init and end chunks, the grace period; default the system's
	Logger    *slog.Logger  // default: discard

	// Publish hands a signed chunk on (into the tree); an error means the
	// broadcast takes no more (the media's sink then fails with ErrEnded).
	Publish func(*chunk.Chunk) error
	// Seal, when set, seals a chunk's payload before it is signed (a
	// private broadcast: audience.Epoch.SealChunk). A chunk it refuses
	// (a nonce the epoch has used: a second init on one Seq) is dropped
	// with a warning.
	Seal func(*chunk.Chunk) error
	// Record notes every chunk published, before Publish (the replay's
	// manifest); nil: nobody.
	Record func(*chunk.Chunk)
	// Stripes and Parity, when Stripes is not 0, stripe every chunk
	// (chunk.Chunk's Data and Parity, set before it is signed): the
	// broadcast goes over Stripes+Parity trees (package mesh/stripe).
	Stripes, Parity int
	// Announce tells what the announcement should now say. At the end it
	// comes after the last chunk (the announcer seals the replay before it
	// announces the end).
	Announce func(Change)
	// Live hears a publisher go live ("rtmp", "whip") or the source start
	// ("source"), for metrics; nil: nobody.
	Live func(proto string)

	// These hooks are called with the Publisher's lock held: they must not
	// call back into it.
}

// Publisher admits one publisher at a time into the broadcast and makes
// its chunks. Its methods are safe for concurrent use.
type Publisher struct {
	cfg   Config
	log   *slog.Logger
	clock clock.Clock

	ctx    context.Context // ends at Stop or Abort: the source, the grace period
	cancel context.CancelFunc
	wg     sync.WaitGroup // the source and the grace period

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
	graceCancel context.CancelFunc
	stopping    bool // Stop or Abort was called: no new goroutine (wg)
	ended       bool
	err         error // why a source stopped early
	rateBytes   int64
	rateDur     time.Duration
	rateSet     bool  // a bitrate has been announced
	bitrate     int64 // the last announced
}

// New returns a Publisher waiting for media.
func New(cfg Config) (*Publisher, error) {
	switch {
	case cfg.Broadcast == "" || cfg.Signer == nil || cfg.Publish == nil || cfg.Announce == nil:
		return nil, errors.New("publish: a broadcast, a signer, Publish and Announce are required")
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, log: cfg.Logger, clock: clock.OrSystem(cfg.Clock)}
	pcfg := cfg.Packager
	if pcfg.Logger == nil {
		pcfg.Logger = p.log.With("part", "cmaf")
	}
	var err error
	if p.pkg, err = cmaf.New(pcfg, p.emit); err != nil {
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// Play runs a source into the broadcast; its end is the broadcast's. Call
// it once, before Stop.
func (p *Publisher) Play(src media.Source) {
	p.mu.Lock()
	p.live, p.gen = "source", p.gen+1
	gen := p.gen
	p.mu.Unlock()
	p.hear("source")
	p.wg.Go(func() {
		err := src.Run(p.ctx, sink{p, gen})
		p.mu.Lock()
		defer p.mu.Unlock()
		p.live = ""
		switch {
		case err == nil:
			p.log.Info("the source ended")
		case p.ctx.Err() != nil || errors.Is(err, ErrEnded):
		default:
			p.err = err
			p.log.Warn("the source failed", "err", err)
		}
		p.endLocked()
	})
}

func (p *Publisher) hear(proto string) {
	if p.cfg.Live != nil {
		p.cfg.Live(proto)
	}
}

// Stop ends the ingest and the broadcast (the last chunk says so).
func (p *Publisher) Stop() {
	p.halt()
	p.closeRTMP()
	p.mu.Lock()
	p.endLocked()
	p.mu.Unlock()
}

// Abort stops the ingest of a broadcast that failed to start: nothing is
// sent.
func (p *Publisher) Abort() { p.halt() }

// halt stops the source, the grace period and the RTMP server, and waits
// for them.
func (p *Publisher) halt() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.closeRTMP()
}

func (p *Publisher) closeRTMP() {
	if p.rtmp != nil {
		_ = p.rtmp.Close()
		p.rtmpWG.Wait()
	}
}

// Live returns over which protocol a publisher is live ("rtmp", "whip",
// "source"), or "".
func (p *Publisher) Live() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// Err returns why the source stopped before its end (bad input), or nil.
func (p *Publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// sink is one publisher's way into the packager.
type sink struct {
	p   *Publisher
	gen int
}

func (s sink) Tracks(tracks []media.Track) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(s.gen); err != nil {
		return err
	}
	p.started = true
	return p.pkg.Tracks(tracks)
}

func (s sink) Sample(smp media.Sample) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(s.gen); err != nil {
		return err
	}
	return p.pkg.Sample(smp)
}

func (p *Publisher) usable(gen int) error {
	switch {
	case p.ended:
		return ErrEnded
	case gen != p.gen:
		return fmt.Errorf("%w: this publisher was replaced", ErrBusy)
	}
	return nil
}

// emit is the packager's output: each init and part becomes a chunk.
func (p *Publisher) emit(o cmaf.Output) error {
	if p.hold != nil {
		*p.hold = append(*p.hold, o)
		return nil
	}
	return p.send(o, false)
}

// send signs and publishes one output; end flags the last part.
func (p *Publisher) send(o cmaf.Output, end bool) error {
	c := &chunk.Chunk{Broadcast: p.cfg.Broadcast, Seq: p.seq}
	if o.Init != nil {
		// An init carries the Seq of the first part it applies to.
		if p.haveInit && p.initSeq == p.seq {
			p.log.Warn("a second init segment before any part: the tree keeps the first", "seq", p.seq)
		}
		p.initSeq, p.haveInit = p.seq, true
		c.Flags = chunk.FlagInit
		c.Wallclock = p.clock.Now().UnixNano()
		c.Payload = o.Init
		p.log.Info("init segment", "seq", c.Seq, "codecs", o.Codecs)
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
	return p.out(c)
}

// out seals (a private broadcast's) and signs a chunk, records it and
// publishes it.
func (p *Publisher) out(c *chunk.Chunk) error {
	if p.cfg.Seal != nil {
		if err := p.cfg.Seal(c); err != nil {
			p.log.Warn("a chunk not sealed: dropped", "seq", c.Seq, "flags", c.Flags, "err", err)
			return nil
		}
	}
	if p.cfg.Stripes > 0 {
		c.Data, c.Parity = uint32(p.cfg.Stripes), uint32(p.cfg.Parity)
	}
	p.cfg.Signer.Sign(c)
	if p.cfg.Record != nil {
		p.cfg.Record(c)
	}
	if err := p.cfg.Publish(c); err != nil {
		return fmt.Errorf("%w: %w", ErrEnded, err)
	}
	return nil
}

// endLocked flushes the packager, flags the last chunk as the end (or sends
// an empty end chunk) and announces the end. p.mu is held.
func (p *Publisher) endLocked() {
	if p.ended {
		return
	}
	if p.graceCancel != nil {
		p.graceCancel()
		p.graceCancel = nil
	}
	var held []cmaf.Output
	if p.started {
		p.hold = &held
		if err := p.pkg.Flush(); err != nil {
			p.log.Warn("flush at the end", "err", err)
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
			p.log.Warn("the last parts were not sent", "err", err)
			break
		}
	}
	if last < 0 {
		c := &chunk.Chunk{Broadcast: p.cfg.Broadcast, Seq: p.seq, Wallclock: p.clock.Now().UnixNano(), Flags: chunk.FlagEnd}
		if err := p.out(c); err != nil {
			p.log.Warn("the end chunk was not sent", "err", err)
		}
	}
	p.ended = true
	p.live = ""
	p.cfg.Announce(Change{Ended: true})
	p.log.Info("broadcast ended", "chunks", p.seq)
}

// measure keeps the announced bitrate near the measured one: it is
// re-announced when it moved by a quarter, at most every rateMax.
func (p *Publisher) measure(part media.Part) {
	p.rateBytes += int64(len(part.Payload))
	p.rateDur += part.Duration
	if p.rateDur < rateMax && (p.rateDur < rateMin || p.rateSet) {
		return
	}
	rate := p.rateBytes * 8 * int64(time.Second) / int64(p.rateDur)
	p.rateBytes, p.rateDur = 0, 0
	cur := p.bitrate
	if cur > 0 && rate*4 > cur*3 && rate*4 < cur*5 {
		return
	}
	p.rateSet, p.bitrate = true, rate
	p.cfg.Announce(Change{Bitrate: rate})
}

// --- publishers over RTMP and WHIP ---

// Admit says whether a publisher may start now.
func (p *Publisher) Admit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitLocked()
}

func (p *Publisher) admitLocked() error {
	switch {
	case p.ended:
		return ErrEnded
	case p.live != "":
		return fmt.Errorf("%w (over %s)", ErrBusy, p.live)
	}
	return nil
}

// Publish starts a publisher's session over proto ("rtmp", "whip"), with
// the title it gave ("" for none), and returns its sink.
func (p *Publisher) Publish(proto, title string) (media.Sink, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.admitLocked(); err != nil {
		return nil, err
	}
	if p.graceCancel != nil {
		p.graceCancel()
		p.graceCancel = nil
	}
	p.live, p.gen, p.parts = proto, p.gen+1, 0
	if title != "" {
		p.cfg.Announce(Change{Title: title})
	}
	p.hear(proto)
	p.log.Info("publisher live", "over", proto)
	return sink{p, p.gen}, nil
}

// Unpublish ends a publisher's session: a publisher that ended its stream
// (cause nil, or WHIP's ErrClosed) ends the broadcast; one that was cut off
// has Grace to come back.
func (p *Publisher) Unpublish(cause error) {
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
		p.log.Info("publisher left", "over", proto, "err", cause)
		p.endLocked()
	case parts == 0:
		// It never got going (no camera, no keyframe): nothing to end.
		p.log.Info("publisher gone before any media", "over", proto, "err", cause)
	default:
		p.log.Info("publisher cut off; waiting for it to come back", "over", proto, "err", cause, "grace", p.cfg.Grace)
		if p.started {
			if err := p.pkg.Flush(); err != nil {
				p.log.Warn("flush", "err", err)
			}
		}
		p.awaitReturn()
	}
}

// awaitReturn ends the broadcast when the grace period passes without a new
// publisher. p.mu is held.
func (p *Publisher) awaitReturn() {
	if p.stopping {
		return // Stop ends the broadcast
	}
	gen := p.gen
	ctx, cancel := context.WithCancel(p.ctx)
	p.graceCancel = cancel
	p.wg.Go(func() {
		defer cancel()
		if p.clock.Sleep(ctx, p.cfg.Grace) != nil {
			return // a publisher came back, or the broadcast is stopping
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.gen == gen && p.live == "" {
			p.log.Info("the publisher did not come back")
			p.endLocked()
		}
	})
}

// ListenRTMP takes RTMP publishers at addr (rtmp://HOST:PORT/live/KEY,
// with Config.StreamKey).
func (p *Publisher) ListenRTMP(addr string) error {
	srv, err := rtmp.New(rtmp.Config{
		Authorize: func(key string) error {
			// In constant time: how long a refusal takes says nothing about
			// how much of a guessed key was right.
			if subtle.ConstantTimeCompare([]byte(key), []byte(p.cfg.StreamKey)) != 1 {
				return ErrStreamKey
			}
			return p.Admit()
		},
		Publish:   func(string) (media.Sink, error) { return p.Publish("rtmp", "") },
		Unpublish: func(_ string, err error) { p.Unpublish(err) },
		Logger:    p.log.With("part", "rtmp"),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("publish: RTMP: %w", err)
	}
	p.rtmp, p.rtmpLn = srv, ln
	p.rtmpWG.Go(func() { _ = srv.Serve(ln) })
	return nil
}

// RTMPAddr returns where the RTMP ingest listens (nil when it does not).
func (p *Publisher) RTMPAddr() net.Addr {
	if p.rtmpLn == nil {
		return nil
	}
	return p.rtmpLn.Addr()
}

// keyEncoding is base32 without padding, in lower case: a key easy to type.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewStreamKey returns a random stream key: 20 characters, letters and
// digits, easy to paste into an encoder.
func NewStreamKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return keyEncoding.EncodeToString(b[:])
}
