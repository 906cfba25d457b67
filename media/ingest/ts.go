package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/peerscope/peerscope/media"
)

// Track IDs the demuxers give: video 1, audio 2.
const (
	videoTrackID = 1
	audioTrackID = 2
)

// TS is a media.Source reading an MPEG-TS byte stream: a pipe, stdin, a
// file that should not be paced. H.264 video and AAC or Opus audio are
// taken (the first of each); other elementary streams are ignored, and a
// program with none of these is refused.
type TS struct {
	r    io.Reader
	opts options
}

var _ media.Source = (*TS)(nil)

// NewTS returns a source reading MPEG-TS from r. When ctx ends, Run
// unblocks a pending Read by setting a past read deadline if r has
// SetReadDeadline (an *os.File pipe, a net.Conn); another reader keeps Run
// until its Read returns.
func NewTS(r io.Reader, opts ...Option) *TS {
	return &TS{r: r, opts: newOptions(opts)}
}

// Run reads until the input ends.
func (s *TS) Run(ctx context.Context, sink media.Sink) error {
	if d, ok := s.r.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if s.opts.pace {
		sink = newPacer(ctx, sink, s.opts.clock, true)
	}
	_, err := demuxTS(ctx, s.r, sink, s.opts)
	return err
}

// guard sits under the demuxer: it ends the input when ctx ends and
// refuses input that goes on too long without being media.
type guard struct {
	ctx      context.Context
	r        io.Reader
	o        *options
	probing  bool
	n        int64 // bytes read
	lastGood int64 // n when the last sample was delivered (or the probe ended)
	err      error // why the guard stopped the input
	ioErr    error // the last error from r
}

func (g *guard) Read(p []byte) (int, error) {
	if err := g.ctx.Err(); err != nil {
		g.err = err
		return 0, err
	}
	switch {
	case g.probing && g.n > g.o.maxProbe:
		g.err = fmt.Errorf("%w: no MPEG-TS program (PAT/PMT) with its tracks in the first %d bytes", media.ErrBadInput, g.n)
	case !g.probing && g.n-g.lastGood > g.o.maxGarbage:
		g.err = fmt.Errorf("%w: %d bytes of MPEG-TS without an access unit", media.ErrBadInput, g.n-g.lastGood)
	}
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if err != nil && err != io.EOF {
		g.ioErr = err
	}
	return n, err
}

// tsDemuxer feeds one TS session to a sink.
type tsDemuxer struct {
	sink       media.Sink
	g          *guard
	clock      Clock
	td         mpegts.TimeDecoder
	samples    int
	aacRate    int
	decodeErrs int
	lastErr    error
}

// demuxTS reads one MPEG-TS stream from r into sink and returns how many
// samples it delivered. At the end of the input it returns nil if there was
// media, an error wrapping media.ErrBadInput if there was none.
func demuxTS(ctx context.Context, r io.Reader, sink media.Sink, o options) (n int, err error) {
	g := &guard{ctx: ctx, r: r, o: &o, probing: true}
	d := &tsDemuxer{sink: sink, g: g, clock: o.clock}
	defer func() {
		if p := recover(); p != nil {
			n, err = d.samples, fmt.Errorf("%w: %w: %v", media.ErrBadInput, ErrDemuxerPanic, p)
		}
	}()

	tr := &mpegts.Reader{R: g}
	if err := tr.Initialize(); err != nil {
		return 0, d.inputError(err, "reading the program")
	}
	tracks, err := d.tracks(tr)
	if err != nil {
		return 0, err
	}
	g.probing, g.lastGood = false, g.n
	if err := sink.Tracks(tracks); err != nil {
		return 0, err
	}
	tr.OnDecodeError(func(err error) {
		d.decodeErrs++
		d.lastErr = err
		if d.decodeErrs == 1 || d.decodeErrs%1000 == 0 {
			o.log.Debug("MPEG-TS decode error", "err", err, "count", d.decodeErrs)
		}
	})
	for {
		if err := tr.Read(); err != nil {
			if errors.Is(err, io.EOF) && d.samples > 0 {
				return d.samples, nil
			}
			return d.samples, d.inputError(err, "reading")
		}
	}
}

// inputError explains why the input stopped.
func (d *tsDemuxer) inputError(err error, doing string) error {
	var se sinkError
	switch {
	case d.g.ctx.Err() != nil:
		return d.g.ctx.Err()
	case d.g.err != nil:
		return d.g.err // the guard's verdict
	case errors.As(err, &se):
		return se.err
	case errors.Is(err, media.ErrBadInput):
		return err // from the sink
	case d.g.ioErr != nil && errors.Is(err, d.g.ioErr):
		return err // the connection's, not the data's
	case doing == "reading the program" && err.Error() == "max recorded size exceeded":
		// mediacommon looks for the program in its first 1 MiB only, and
		// says so in words meant for its own developers.
		return fmt.Errorf("%w: no MPEG-TS program (PAT/PMT) with its tracks in the first %d bytes", media.ErrBadInput, d.g.n)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		what := "no media"
		if d.lastErr != nil {
			what = fmt.Sprintf("no media (%d decode errors, the last: %v)", d.decodeErrs, d.lastErr)
		}
		return fmt.Errorf("%w: MPEG-TS ended %s: %s", media.ErrBadInput, doing, what)
	}
	// The demuxer's own complaints (a broken PMT...).
	return fmt.Errorf("%w: MPEG-TS %s: %v", media.ErrBadInput, doing, err)
}

// sinkError carries the sink's error through the demuxer untouched.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }
func (e sinkError) Unwrap() error { return e.err }

func (d *tsDemuxer) tracks(tr *mpegts.Reader) ([]media.Track, error) {
	var out []media.Track
	var video, audio bool
	var ignored []string
	for _, t := range tr.Tracks() {
		switch c := t.Codec.(type) {
		case *tscodecs.H264:
			if video {
				ignored = append(ignored, "second H.264")
				continue
			}
			video = true
			out = append(out, media.Track{ID: videoTrackID, Codec: media.H264, ClockRate: 90000})
			tr.OnDataH264(t, d.onH264)
		case *tscodecs.Opus:
			if audio {
				ignored = append(ignored, "second audio")
				continue
			}
			audio = true
			out = append(out, media.Track{ID: audioTrackID, Codec: media.Opus, ClockRate: 48000, ChannelCount: c.ChannelCount})
			tr.OnDataOpus(t, d.onOpus)
		case *tscodecs.MPEG4Audio:
			if audio {
				ignored = append(ignored, "second audio")
				continue
			}
			conf, err := c.Config.Marshal()
			if err != nil || c.Config.SampleRate <= 0 {
				return nil, fmt.Errorf("%w: AAC configuration: %v", media.ErrBadInput, err)
			}
			audio = true
			d.aacRate = c.Config.SampleRate
			out = append(out, media.Track{ID: audioTrackID, Codec: media.AAC, ClockRate: c.Config.SampleRate,
				ChannelCount: c.Config.ChannelCount, AudioConfig: conf}) //nolint:staticcheck // the count ADTS gives
			tr.OnDataMPEG4Audio(t, d.onAAC)
		default:
			ignored = append(ignored, codecName(t.Codec))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %w: MPEG-TS carries %s; want H.264, AAC or Opus",
			media.ErrBadInput, media.ErrUnsupportedCodec, strings.Join(ignored, ", "))
	}
	if len(ignored) > 0 {
		d.g.o.log.Info("MPEG-TS streams ignored", "streams", ignored)
	}
	return out, nil
}

func codecName(c tscodecs.Codec) string {
	n := fmt.Sprintf("%T", c)
	return strings.TrimPrefix(n, "*codecs.")
}

// ts converts a 90 kHz decoded timestamp to a duration.
func ts(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

// ctoTicks is pts-dts for 33-bit timestamps that may have wrapped apart.
func ctoTicks(pts, dts int64) int64 {
	d := (pts - dts) & 0x1ffffffff
	if d >= 0x100000000 {
		d -= 0x200000000
	}
	return d
}

func (d *tsDemuxer) deliver(s media.Sample) error {
	d.samples++
	d.g.lastGood = d.g.n
	if err := d.sink.Sample(s); err != nil {
		return sinkError{err}
	}
	return nil
}

func (d *tsDemuxer) onH264(pts, dts int64, au [][]byte) error {
	t := d.td.Decode(dts)
	key := false
	for _, n := range au {
		if len(n) > 0 && n[0]&0x1f == 5 {
			key = true
		}
	}
	return d.deliver(media.Sample{
		Track:     videoTrackID,
		DTS:       ts(t),
		PTS:       ts(t + ctoTicks(pts, dts)),
		Keyframe:  key,
		NALUs:     au,
		Wallclock: d.clock.Now(),
	})
}

func (d *tsDemuxer) onOpus(pts int64, packets [][]byte) error {
	t := ts(d.td.Decode(pts))
	now := d.clock.Now()
	for _, p := range packets {
		if err := d.deliver(media.Sample{Track: audioTrackID, DTS: t, PTS: t, Keyframe: true, Data: p, Wallclock: now}); err != nil {
			return err
		}
		t += time.Duration(opus.PacketDuration2(p)) * time.Second / 48000
	}
	return nil
}

func (d *tsDemuxer) onAAC(pts int64, aus [][]byte) error {
	t := ts(d.td.Decode(pts))
	now := d.clock.Now()
	for i, au := range aus {
		at := t + time.Duration(i*mpeg4audio.SamplesPerAccessUnit)*time.Second/time.Duration(d.aacRate)
		if err := d.deliver(media.Sample{Track: audioTrackID, DTS: at, PTS: at, Keyframe: true, Data: au, Wallclock: now}); err != nil {
			return err
		}
	}
	return nil
}
