package cmaf

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/peerscope/peerscope/media"
)

// Output is one thing the packager emits: an init segment or a part.
type Output struct {
	// Init, when not nil, is a new init segment (ftyp+moov) and Part is
	// empty. One precedes the first part, and one precedes every part whose
	// codec configuration differs from the last init segment's.
	Init []byte
	// Codecs is Init's RFC 6381 codecs string ("avc1.42c01e,opus"), for
	// HLS playlists and MSE; empty with a part.
	Codecs string
	// Part is the next part, when Init is nil. Its Payload is freshly
	// allocated and never touched again by the packager.
	Part media.Part
}

// Emit receives the packager's output, in order, on the goroutine that
// called Tracks, Sample or Flush. An error it returns is returned by that
// call.
type Emit func(Output) error

// Stats counts what the packager did. Its fields may be read while the
// packager runs.
type Stats struct {
	Parts, Inits atomic.Int64
	// DroppedVideo counts video samples dropped while waiting for a
	// keyframe (at the start, and after Tracks is called again).
	DroppedVideo atomic.Int64
	// DroppedAudio counts audio samples from before the first keyframe.
	DroppedAudio atomic.Int64
	// DroppedEmpty counts samples with no payload.
	DroppedEmpty atomic.Int64
	// Rebases counts timestamp discontinuities that were re-based.
	Rebases atomic.Int64
}

// Packager is a media.Sink that packs samples into CMAF. Its methods must
// be called from one goroutine (the media.Sink contract); it keeps no
// reference to a sample's NALUs or Data after Sample returns.
type Packager struct {
	cfg   Config
	emit  Emit
	log   *slog.Logger
	stats Stats

	tracks []*track // video first
	video  *track   // nil: audio-only

	// Timeline, in the packager's own time: input DTS plus a track offset.
	started     bool          // this session has its first keyframe
	everStarted bool          // origin is set
	origin      time.Duration // DTS of the first keyframe: baseMediaDecodeTime 0
	floor       time.Duration // DTS of this session's first keyframe: earlier samples are dropped
	end         time.Duration // end of what was emitted (the next session continues here)
	newest      time.Duration // newest DTS of any track in this session
	first       time.Duration // first DTS of this session (for VideoTimeout)
	haveFirst   bool
	epoch       int           // counts re-bases, so tracks that jump together share one
	corr        time.Duration // offset change of the latest re-base

	// The open part.
	partLen   int // samples, over all tracks
	partStart time.Duration
	partWall  time.Time
	partIndep bool
	partBytes int // mdat payload
	partMoof  int // moof estimate
	seq       uint32

	// The last init segment.
	initSPS, initPPS []byte
	initDirty        bool // tracks changed since the last init
	lastInit         []byte
}

var _ media.Sink = (*Packager)(nil)

// New returns a Packager that calls emit with what it makes.
func New(cfg Config, emit Emit) (*Packager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if emit == nil {
		return nil, fmt.Errorf("%w: nil Emit", ErrConfig)
	}
	return &Packager{cfg: cfg, emit: emit, log: cfg.Logger}, nil
}

// Stats returns the packager's counters.
func (p *Packager) Stats() *Stats { return &p.stats }

// entry is one sample held by a track: queued, or placed in the open part.
type entry struct {
	dts, pts time.Duration
	wall     time.Time
	off, n   int // payload bytes in track.data
	key      bool
	sps, pps []byte // the parameter sets in force (video keyframes)
}

type track struct {
	media.Track
	rate    int64         // timescale
	minStep time.Duration // one tick: the smallest DTS step
	defDur  time.Duration // sample duration assumed before one is measured

	// AAC: the AudioSpecificConfig; Opus: the channel count.
	asc      *mpeg4audio.AudioSpecificConfig
	channels int

	// Samples: q[:placed] are in the open part, q[placed:] wait. Their
	// payloads (AVCC for video) are in data, in the same order.
	q      []entry
	placed int
	data   []byte
	durs   []uint32 // scratch for marshalling

	// Timestamps.
	seen    bool // a sample arrived in this session
	lastRaw time.Duration
	lastOut time.Duration
	lastDur time.Duration
	offset  time.Duration
	epoch   int
	newest  time.Duration

	// H.264 parameter sets last seen in the stream.
	sps, pps []byte
}

// Tracks starts a session with the given tracks. Calling it again (the
// source reconnected) flushes what is pending, and the new session's
// timeline continues where the last one ended.
func (p *Packager) Tracks(tracks []media.Track) error {
	if p.tracks != nil {
		if err := p.Flush(); err != nil {
			return err
		}
	}
	ts, err := newTracks(tracks)
	if err != nil {
		return err
	}
	p.tracks, p.video = ts, nil
	for _, t := range ts {
		t.epoch = p.epoch
		if t.IsVideo() {
			p.video = t
		}
	}
	p.started, p.haveFirst, p.initDirty = false, false, true
	p.log.Debug("tracks", "tracks", len(ts), "video", p.video != nil)
	return nil
}

func newTracks(in []media.Track) ([]*track, error) {
	if len(in) == 0 {
		return nil, badInput(ErrNoTracks, "empty track list")
	}
	var video, audio []*track
	ids := map[int]bool{}
	for _, mt := range in {
		if mt.ID < 1 || ids[mt.ID] {
			return nil, badInput(ErrNoTracks, "track ID %d is not a fresh positive ID", mt.ID)
		}
		ids[mt.ID] = true
		t := &track{Track: mt}
		switch mt.Codec {
		case media.H264:
			t.rate, t.defDur = 90000, time.Second/30
			t.sps, t.pps = clone(mt.SPS), clone(mt.PPS)
			if len(t.sps) > 0 {
				if err := checkSPS(t.sps); err != nil {
					return nil, err
				}
			}
			video = append(video, t)
		case media.Opus:
			t.rate, t.defDur = 48000, 20*time.Millisecond
			t.channels = mt.ChannelCount
			if t.channels == 0 {
				t.channels = 2
			}
			if t.channels > 8 {
				return nil, badInput(ErrNoTracks, "opus with %d channels", t.channels)
			}
			audio = append(audio, t)
		case media.AAC:
			var asc mpeg4audio.AudioSpecificConfig
			if err := asc.Unmarshal(mt.AudioConfig); err != nil {
				return nil, badInput(ErrNoTracks, "AAC track %d: AudioSpecificConfig: %v", mt.ID, err)
			}
			if asc.SampleRate < 8000 || asc.SampleRate > 96000 {
				return nil, badInput(ErrNoTracks, "AAC sample rate %d", asc.SampleRate)
			}
			t.asc = &asc
			t.rate = int64(asc.SampleRate)
			t.defDur = time.Duration(mpeg4audio.SamplesPerAccessUnit) * time.Second / time.Duration(t.rate)
			audio = append(audio, t)
		default:
			return nil, fmt.Errorf("%w: %w: track %d: %q", media.ErrBadInput, media.ErrUnsupportedCodec, mt.ID, mt.Codec)
		}
		t.minStep = time.Duration((int64(time.Second) + t.rate - 1) / t.rate)
		t.lastDur = t.defDur
	}
	if len(video) > 1 || len(audio) > 1 {
		return nil, badInput(ErrNoTracks, "%d video and %d audio tracks: at most one of each", len(video), len(audio))
	}
	return append(video, audio...), nil
}

func checkSPS(sps []byte) error {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return badInput(ErrNoKeyframe, "bad SPS: %v", err)
	}
	if w, h := s.Width(), s.Height(); w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return badInput(ErrNoKeyframe, "SPS gives a %dx%d picture", w, h)
	}
	return nil
}

func (p *Packager) track(id int) *track {
	for _, t := range p.tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Sample takes one access unit.
func (p *Packager) Sample(s media.Sample) error {
	if p.tracks == nil {
		return badInput(ErrNoTracks, "sample before Tracks")
	}
	t := p.track(s.Track)
	if t == nil {
		return badInput(ErrNoTracks, "sample for unknown track %d", s.Track)
	}

	// Look at the payload before anything is kept.
	key, size := true, len(s.Data)
	var newSPS, newPPS []byte
	if t.IsVideo() {
		key, size = false, 0
		for _, n := range s.NALUs {
			if len(n) == 0 {
				continue
			}
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
				continue
			case h264.NALUTypeIDR:
				key = true
			case h264.NALUTypeSPS:
				newSPS = n
			case h264.NALUTypePPS:
				newPPS = n
			}
			size += 4 + len(n)
		}
	}
	if size == 0 {
		p.stats.DroppedEmpty.Add(1)
		return nil
	}
	if size > p.cfg.MaxPartSize-1024 {
		return badInput(ErrTooLarge, "%d bytes on track %d", size, t.ID)
	}
	if newSPS != nil && !bytes.Equal(newSPS, t.sps) {
		if err := checkSPS(newSPS); err != nil {
			// A corrupt SPS (loss on a UDP feed) costs this picture, not
			// the broadcast; with no good SPS at all, ErrNoKeyframe comes.
			if n := p.stats.DroppedVideo.Add(1); n <= 10 || n%1000 == 0 {
				p.log.Warn("picture with a bad SPS dropped", "err", err, "droppedVideo", n)
			}
			return nil
		}
		t.sps = clone(newSPS)
	}
	if newPPS != nil && !bytes.Equal(newPPS, t.pps) {
		t.pps = clone(newPPS)
	}

	dts, pts, err := p.normalise(t, s)
	if err != nil {
		return err
	}
	if !p.haveFirst {
		p.first, p.haveFirst = dts, true
	}

	if !p.started {
		switch {
		case p.video == nil:
			shift := p.start(dts)
			dts, pts = dts+shift, pts+shift
		case t != p.video:
			// Audio waits for the first keyframe, MaxLag of it at most.
			p.push(t, s, dts, pts, key)
			n := 0
			for n < len(t.q) && t.q[n].dts < p.newest-p.cfg.MaxLag {
				n++
			}
			p.stats.DroppedAudio.Add(int64(n))
			t.dropFront(n)
			return p.checkTimeout()
		case !key || len(t.sps) == 0 || len(t.pps) == 0:
			if n := p.stats.DroppedVideo.Add(1); key && (n <= 10 || n%1000 == 0) {
				p.log.Warn("keyframe without SPS/PPS dropped", "droppedVideo", n)
			}
			return p.checkTimeout()
		default:
			shift := p.start(dts)
			dts, pts = dts+shift, pts+shift
		}
	}

	if dts < p.floor {
		// Audio from before the session's first keyframe, arriving late.
		p.stats.DroppedAudio.Add(1)
		return nil
	}
	p.push(t, s, dts, pts, key)
	return p.drain(false)
}

func (p *Packager) checkTimeout() error {
	if p.newest-p.first > p.cfg.VideoTimeout {
		return badInput(ErrNoKeyframe, "none in %v of media (%d video samples dropped)",
			p.cfg.VideoTimeout, p.stats.DroppedVideo.Load())
	}
	return nil
}

// shiftFor is how far a session starting at dts moves to continue the
// timeline: 0 for the first session.
func (p *Packager) shiftFor(dts time.Duration) time.Duration {
	if !p.everStarted {
		return 0
	}
	return p.end - dts
}

// start begins the session at the keyframe (or first audio sample) at dts
// and returns how far the session's timeline moves to continue the last.
func (p *Packager) start(dts time.Duration) time.Duration {
	shift := p.shiftFor(dts)
	dts += shift
	if !p.everStarted {
		p.origin, p.end, p.everStarted = dts, dts, true
	}
	p.floor = dts
	for _, t := range p.tracks {
		t.offset += shift
		t.lastOut += shift
		t.newest += shift
		n := 0
		for i := range t.q {
			t.q[i].dts += shift
			t.q[i].pts += shift
			if t.q[i].dts < dts {
				n++
			}
		}
		p.stats.DroppedAudio.Add(int64(n))
		t.dropFront(n)
	}
	p.newest += shift
	p.first += shift
	p.started = true
	p.log.Info("stream starts", "at", dts-p.origin, "droppedVideo", p.stats.DroppedVideo.Load())
	return shift
}

// normalise maps the sample's timestamps onto the packager's timeline,
// strictly increasing per track.
func (p *Packager) normalise(t *track, s media.Sample) (dts, pts time.Duration, err error) {
	raw := s.DTS
	cto := time.Duration(0)
	if t.IsVideo() {
		cto = s.PTS - s.DTS
		if cto > p.cfg.MaxGap || cto < -p.cfg.MaxGap {
			cto = 0
		}
	}
	if t.seen {
		d := raw - t.lastRaw
		if d < t.minStep || d > p.cfg.MaxGap {
			if p.cfg.StrictTimestamps {
				return 0, 0, badInput(ErrDiscontinuity, "track %d: DTS %v after %v", t.ID, raw, t.lastRaw)
			}
			rebases := p.stats.Rebases.Add(1)
			shared := false
			if t.epoch < p.epoch {
				// Another track jumped just before: if this is the same
				// jump, take the same correction, keeping A/V in sync.
				if d := raw + t.offset + p.corr - t.lastOut; d >= t.minStep && d <= p.cfg.MaxGap {
					t.offset += p.corr
					shared = true
				}
			}
			if !shared {
				off := t.lastOut + t.lastDur - raw
				p.corr = off - t.offset
				t.offset = off
				p.epoch++
			}
			t.epoch = p.epoch
			if rebases <= 10 || rebases%1000 == 0 { // a broken source must not flood the log
				p.log.Warn("timestamp discontinuity re-based", "track", t.ID, "dts", raw, "previous", t.lastRaw,
					"shared", shared, "count", rebases)
			}
		} else {
			t.lastDur = d
		}
	}
	if !t.seen && t.Codec == media.Opus {
		t.lastDur = opusDuration(s.Data, t.defDur)
	}
	dts = raw + t.offset
	t.seen, t.lastRaw, t.lastOut = true, raw, dts
	t.newest = dts
	if dts > p.newest || !p.haveFirst {
		p.newest = dts
	}
	return dts, dts + cto, nil
}

// push appends the sample to its track's queue, copying its payload.
func (p *Packager) push(t *track, s media.Sample, dts, pts time.Duration, key bool) {
	off := len(t.data)
	if t.IsVideo() {
		for _, n := range s.NALUs {
			if len(n) == 0 {
				continue
			}
			if typ := h264.NALUType(n[0] & 0x1f); typ == h264.NALUTypeAccessUnitDelimiter || typ == h264.NALUTypeFillerData {
				continue
			}
			t.data = append(t.data, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			t.data = append(t.data, n...)
		}
	} else {
		t.data = append(t.data, s.Data...)
	}
	e := entry{dts: dts, pts: pts, wall: s.Wallclock, off: off, n: len(t.data) - off, key: key}
	if t.IsVideo() && key {
		e.sps, e.pps = t.sps, t.pps
	}
	t.q = append(t.q, e)
}

// dropFront forgets the first n samples of the track.
func (t *track) dropFront(n int) {
	if n == 0 {
		return
	}
	cut := len(t.data)
	if n < len(t.q) {
		cut = t.q[n].off
	}
	t.data = t.data[:copy(t.data, t.data[cut:])]
	k := copy(t.q, t.q[n:])
	clear(t.q[k:]) // drop references to parameter sets
	t.q = t.q[:k]
	for i := range t.q {
		t.q[i].off -= cut
	}
	t.placed = max(0, t.placed-n)
}

// drain places queued samples in DTS order while no track needs waiting
// for; with final, it places everything.
func (p *Packager) drain(final bool) error {
	for {
		var h *track
		for _, t := range p.tracks {
			if t.placed < len(t.q) && (h == nil || t.q[t.placed].dts < h.q[h.placed].dts) {
				h = t
			}
		}
		if h == nil {
			return nil
		}
		if !final && p.mustWait(h, h.q[h.placed].dts) {
			return nil
		}
		if err := p.place(h); err != nil {
			return err
		}
	}
}

// mustWait reports whether a sample at dts must wait for another track
// that may still send something earlier.
func (p *Packager) mustWait(h *track, dts time.Duration) bool {
	for _, u := range p.tracks {
		if u == h || u.placed < len(u.q) {
			continue
		}
		if u.seen && u.newest >= dts {
			continue // anything u sends next is later
		}
		if p.stalled(u) {
			continue
		}
		return true
	}
	return false
}

func (p *Packager) stalled(u *track) bool {
	last := p.first
	if u.seen {
		last = u.newest
	}
	return p.newest-last > p.cfg.MaxLag
}

// place moves the head of t's queue into the open part, cutting the part
// first when the rules say so.
func (p *Packager) place(t *track) error {
	x := &t.q[t.placed]
	if p.partLen > 0 {
		cut := t.IsVideo() && x.key
		if !cut && (p.video == nil || t.IsVideo() || p.stalled(p.video)) {
			dur := t.lastDur
			if t.placed+1 < len(t.q) {
				dur = t.q[t.placed+1].dts - x.dts
			}
			cut = x.dts+dur-p.partStart > p.cfg.PartDuration+time.Millisecond
		}
		cut = cut || p.partBytes+p.partMoof+x.n+64 > p.cfg.MaxPartSize || t.placed >= maxPartSamples
		if cut {
			if err := p.emitPart(x.dts, false); err != nil {
				return err
			}
			x = &t.q[0]
		}
	}
	if p.partLen == 0 {
		if err := p.maybeInit(t, x); err != nil {
			return err
		}
		p.partStart, p.partWall = x.dts, x.wall
		p.partIndep = p.video == nil || (t.IsVideo() && x.key)
		p.partMoof = 8 + 16
	}
	if t.placed == 0 {
		p.partMoof += 8 + 16 + 20 + 20 + 4
	}
	t.placed++
	p.partLen++
	p.partBytes += x.n
	p.partMoof += 16
	return nil
}

// maybeInit emits an init segment before a part that starts at x, when the
// configuration changed.
func (p *Packager) maybeInit(t *track, x *entry) error {
	sps, pps := p.initSPS, p.initPPS
	if t.IsVideo() && x.key {
		sps, pps = x.sps, x.pps
	}
	if !p.initDirty && bytes.Equal(sps, p.initSPS) && bytes.Equal(pps, p.initPPS) {
		return nil
	}
	init, codecs, err := p.marshalInit(sps, pps)
	if err != nil {
		return badInput(ErrNoKeyframe, "init segment: %v", err)
	}
	p.initSPS, p.initPPS, p.initDirty = sps, pps, false
	if bytes.Equal(init, p.lastInit) {
		return nil
	}
	p.lastInit = init
	p.stats.Inits.Add(1)
	p.log.Info("init segment", "codecs", codecs, "bytes", len(init))
	return p.emit(Output{Init: bytes.Clone(init), Codecs: codecs})
}

// Flush places everything pending and emits the open part, estimating the
// duration of each track's last sample. Call it when the source ends. The
// packager stays usable: more samples continue the timeline.
func (p *Packager) Flush() error {
	if !p.started {
		for _, t := range p.tracks {
			p.stats.DroppedAudio.Add(int64(len(t.q)))
			t.dropFront(len(t.q))
		}
		return nil
	}
	if err := p.drain(true); err != nil {
		return err
	}
	if p.partLen == 0 {
		return nil
	}
	return p.emitPart(0, true)
}

// emitPart marshals and emits the open part. The part ends at cut (the
// DTS of the sample that starts the next part) or, when final, at the end
// of its last sample.
func (p *Packager) emitPart(cut time.Duration, final bool) error {
	end := p.partStart
	for _, t := range p.tracks {
		if t.placed == 0 {
			continue
		}
		t.durs = t.durs[:0]
		base := toTicks(t.q[0].dts-p.origin, t.rate)
		prev := base
		for i := 0; i < t.placed; i++ {
			next := t.q[i].dts + t.lastDur
			if i+1 < len(t.q) {
				next = t.q[i+1].dts
			}
			nt := toTicks(next-p.origin, t.rate)
			t.durs = append(t.durs, uint32(nt-prev))
			prev = nt
			if i == t.placed-1 {
				end = max(end, next)
			}
		}
	}
	if !final && cut > p.partStart {
		// Parts tile the timeline: this one ends where the next begins. (A
		// cut before a sample that came late, from a lagging track, is the
		// exception: then the part ends where its own samples do.)
		end = cut
	}
	p.end = max(p.end, end)
	p.seq++
	part := media.Part{
		Payload:     p.marshalPart(),
		Duration:    end - p.partStart,
		Independent: p.partIndep,
		Wallclock:   p.partWall,
	}
	for _, t := range p.tracks {
		t.dropFront(t.placed)
	}
	p.partLen, p.partBytes, p.partMoof = 0, 0, 0
	p.stats.Parts.Add(1)
	return p.emit(Output{Part: part})
}

// toTicks converts d to a timescale of rate per second, rounding down,
// without overflow for any duration.
func toTicks(d time.Duration, rate int64) int64 {
	s, r := int64(d)/int64(time.Second), int64(d)%int64(time.Second)
	if r < 0 {
		s, r = s-1, r+int64(time.Second)
	}
	return s*rate + r*rate/int64(time.Second)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// opusDuration is the duration of an Opus packet, or def.
func opusDuration(pkt []byte, def time.Duration) time.Duration {
	if n := opus.PacketDuration2(pkt); n > 0 {
		return time.Duration(n) * time.Second / 48000
	}
	return def
}
