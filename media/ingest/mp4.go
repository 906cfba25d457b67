package ingest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"

	"github.com/peerscope/peerscope/media"
)

// mp4Track is one track of an MP4 file being played.
type mp4Track struct {
	id      int
	video   bool
	scale   int64
	samples []*pmp4.Sample
	next    int
	ticks   int64 // DTS of samples[next], in the track's timescale
}

func (t *mp4Track) dts() time.Duration {
	return time.Duration(t.ticks/t.scale)*time.Second + time.Duration(t.ticks%t.scale)*time.Second/time.Duration(t.scale)
}

// demuxMP4 plays a progressive MP4 into sink, samples in DTS order across
// tracks, and returns how many it delivered.
func demuxMP4(ctx context.Context, r io.ReadSeeker, sink media.Sink, o options) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %w: %v", media.ErrBadInput, ErrDemuxerPanic, p)
		}
	}()
	var pres pmp4.Presentation
	if err := pres.Unmarshal(r); err != nil {
		if strings.Contains(err.Error(), "fragmented") {
			return 0, fmt.Errorf("%w: fragmented MP4 is not supported: remux it to MPEG-TS (ffmpeg -i in.mp4 -c copy -f mpegts out.ts)", media.ErrBadInput)
		}
		return 0, fmt.Errorf("%w: MP4: %v", media.ErrBadInput, err)
	}
	tracks, play, err := mp4Tracks(pres, o)
	if err != nil {
		return 0, err
	}
	if err := sink.Tracks(tracks); err != nil {
		return 0, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		t := earliestMP4Track(play)
		if t == nil {
			if n == 0 {
				return 0, fmt.Errorf("%w: MP4 holds no samples", media.ErrBadInput)
			}
			return n, nil
		}
		s, err := t.take(o.clock)
		if err != nil {
			return n, err
		}
		n++
		if err := sink.Sample(s); err != nil {
			return n, err
		}
	}
}

// mp4Tracks picks the tracks to play from an MP4: the first H.264 and the
// first audio track (AAC or Opus). It returns them as the sink is told of
// them and as they are played; the others are logged as ignored.
func mp4Tracks(pres pmp4.Presentation, o options) ([]media.Track, []*mp4Track, error) {
	var tracks []media.Track
	var play []*mp4Track
	var ignored []string
	var video, audio bool
	for _, t := range pres.Tracks {
		mt := &mp4Track{scale: int64(t.TimeScale), samples: t.Samples}
		if off := time.Duration(t.TimeOffset) * time.Second / time.Duration(max(t.TimeScale, 1)); off > -time.Second && off < time.Second {
			mt.ticks = int64(t.TimeOffset) // an edit list shift; beyond a second it is more likely nonsense
		}
		switch c := t.Codec.(type) {
		case *mp4codecs.H264:
			if video {
				ignored = append(ignored, "second H.264")
				continue
			}
			video, mt.id, mt.video = true, videoTrackID, true
			tracks = append(tracks, media.Track{ID: videoTrackID, Codec: media.H264, ClockRate: 90000, SPS: c.SPS, PPS: c.PPS})
		case *mp4codecs.Opus:
			if audio {
				ignored = append(ignored, "second audio")
				continue
			}
			audio, mt.id = true, audioTrackID
			tracks = append(tracks, media.Track{ID: audioTrackID, Codec: media.Opus, ClockRate: 48000, ChannelCount: c.ChannelCount})
		case *mp4codecs.MPEG4Audio:
			if audio {
				ignored = append(ignored, "second audio")
				continue
			}
			conf, err := c.Config.Marshal()
			if err != nil {
				return nil, nil, fmt.Errorf("%w: MP4 AAC configuration: %v", media.ErrBadInput, err)
			}
			audio, mt.id = true, audioTrackID
			tracks = append(tracks, media.Track{ID: audioTrackID, Codec: media.AAC, ClockRate: c.Config.SampleRate,
				ChannelCount: c.Config.ChannelCount, AudioConfig: conf}) //nolint:staticcheck
		default:
			ignored = append(ignored, strings.TrimPrefix(fmt.Sprintf("%T", t.Codec), "*codecs."))
			continue
		}
		if mt.scale <= 0 {
			return nil, nil, fmt.Errorf("%w: MP4 track %d has no timescale", media.ErrBadInput, t.ID)
		}
		play = append(play, mt)
	}
	if len(tracks) == 0 {
		return nil, nil, fmt.Errorf("%w: %w: MP4 carries %s; want H.264, AAC or Opus",
			media.ErrBadInput, media.ErrUnsupportedCodec, strings.Join(ignored, ", "))
	}
	if len(ignored) > 0 {
		o.log.Info("MP4 tracks ignored", "tracks", ignored)
	}
	return tracks, play, nil
}

// earliestMP4Track returns the track whose next sample has the lowest DTS,
// or nil when every track has played all its samples.
func earliestMP4Track(play []*mp4Track) *mp4Track {
	var t *mp4Track
	for _, c := range play {
		if c.next < len(c.samples) && (t == nil || c.dts() < t.dts()) {
			t = c
		}
	}
	return t
}

// take reads the track's next sample and moves past it, stamped with the
// clock's time once it is read.
func (t *mp4Track) take(clk Clock) (media.Sample, error) {
	ps := t.samples[t.next]
	dts := t.dts()
	t.next++
	t.ticks += int64(ps.Duration)
	if ps.PayloadSize > maxSampleSize || ps.GetPayload == nil {
		return media.Sample{}, fmt.Errorf("%w: MP4 sample of %d bytes", media.ErrBadInput, ps.PayloadSize)
	}
	data, err := ps.GetPayload()
	if err != nil {
		return media.Sample{}, fmt.Errorf("%w: MP4 sample: %v", media.ErrBadInput, err)
	}
	s := media.Sample{Track: t.id, DTS: dts, PTS: dts, Keyframe: !ps.IsNonSyncSample, Wallclock: clk.Now()}
	if !t.video {
		s.Data = data
		return s, nil
	}
	var au h264.AVCC
	if err := au.Unmarshal(data); err != nil {
		return media.Sample{}, fmt.Errorf("%w: MP4 H.264 sample: %v", media.ErrBadInput, err)
	}
	s.NALUs = au
	s.PTS = dts + time.Duration(ps.PTSOffset)*time.Second/time.Duration(t.scale)
	return s, nil
}
