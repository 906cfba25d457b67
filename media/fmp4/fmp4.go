package fmp4

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/peerscope/peerscope/media"
)

// MaxTracks bounds the tracks an init segment may declare: a broadcast has
// one video and one audio track, so anything beyond a few is an attack.
const MaxTracks = 8

// ParseInit decodes an init segment (ftyp+moov) into the tracks it declares.
// Codecs the tree cannot carry give an error wrapping
// media.ErrUnsupportedCodec.
func ParseInit(init []byte) ([]media.Track, error) {
	var in mcfmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		return nil, fmt.Errorf("%w: fmp4 init: %v", media.ErrBadInput, err)
	}
	if len(in.Tracks) == 0 {
		return nil, fmt.Errorf("%w: fmp4 init: no track", media.ErrBadInput)
	}
	if len(in.Tracks) > MaxTracks {
		return nil, fmt.Errorf("%w: fmp4 init: %d tracks", media.ErrBadInput, len(in.Tracks))
	}
	tracks := make([]media.Track, 0, len(in.Tracks))
	for _, it := range in.Tracks {
		if it.ID <= 0 || it.TimeScale == 0 {
			return nil, fmt.Errorf("%w: fmp4 init: track %d with timescale %d", media.ErrBadInput, it.ID, it.TimeScale)
		}
		for _, t := range tracks {
			if t.ID == it.ID {
				return nil, fmt.Errorf("%w: fmp4 init: track %d twice", media.ErrBadInput, it.ID)
			}
		}
		t := media.Track{ID: it.ID, ClockRate: int(it.TimeScale)}
		switch c := it.Codec.(type) {
		case *codecs.H264:
			t.Codec = media.H264
			t.SPS, t.PPS = c.SPS, c.PPS
		case *codecs.Opus:
			t.Codec = media.Opus
			t.ChannelCount = c.ChannelCount
		case *codecs.MPEG4Audio:
			t.Codec = media.AAC
			t.ChannelCount = c.Config.ChannelCount
			asc, err := c.Config.Marshal()
			if err != nil {
				return nil, fmt.Errorf("%w: fmp4 init: AAC config: %v", media.ErrBadInput, err)
			}
			t.AudioConfig = asc
		default:
			return nil, fmt.Errorf("%w: fmp4 init: track %d: %T", media.ErrUnsupportedCodec, it.ID, it.Codec)
		}
		tracks = append(tracks, t)
	}
	return tracks, nil
}

// Fragment is what one part holds, unpacked.
type Fragment struct {
	// Samples of every track, in decode order (by DTS; ties keep track order).
	Samples []media.Sample
	// Start is the earliest DTS in the part. Duration is the span of the
	// video track (its first DTS to the end of its last sample), which
	// paces the broadcast: consecutive parts' video spans abut, while audio
	// frames straddle part boundaries. Without video it is the longest span
	// of any track.
	Start, Duration time.Duration
	// Independent reports that the part's first video sample is a keyframe
	// (or, for an audio-only broadcast, always).
	Independent bool
}

// Unpacker unpacks the parts that follow one init segment.
type Unpacker struct {
	tracks []media.Track
}

// NewUnpacker parses init and returns an Unpacker for its parts.
func NewUnpacker(init []byte) (*Unpacker, error) {
	tracks, err := ParseInit(init)
	if err != nil {
		return nil, err
	}
	return &Unpacker{tracks: tracks}, nil
}

// Tracks returns the tracks the init segment declared.
func (u *Unpacker) Tracks() []media.Track { return slices.Clone(u.tracks) }

func (u *Unpacker) track(id int) (media.Track, bool) {
	for _, t := range u.tracks {
		if t.ID == id {
			return t, true
		}
	}
	return media.Track{}, false
}

// Unpack decodes one part (one or more moof+mdat pairs). Each sample's
// Wallclock is wallclock (the capture time of the part's first sample)
// plus the sample's decode-time offset from the part's start. The samples
// alias part.
func (u *Unpacker) Unpack(part []byte, wallclock time.Time) (Fragment, error) {
	var parts mcfmp4.Parts
	if err := parts.Unmarshal(part); err != nil {
		return Fragment{}, fmt.Errorf("%w: fmp4 part: %v", media.ErrBadInput, err)
	}
	if len(parts) == 0 {
		return Fragment{}, fmt.Errorf("%w: fmp4 part: no moof", media.ErrBadInput)
	}

	var (
		fr       Fragment
		first    = true
		hasVideo bool
		sawVideo bool
		span     time.Duration // longest track span
		vspan    time.Duration // video track span
	)
	fr.Independent = true
	for _, t := range u.tracks {
		hasVideo = hasVideo || t.IsVideo()
	}
	for _, p := range parts {
		for _, pt := range p.Tracks {
			t, ok := u.track(pt.ID)
			if !ok {
				return Fragment{}, fmt.Errorf("%w: fmp4 part: track %d not in init", media.ErrBadInput, pt.ID)
			}
			ts := uint64(t.ClockRate)
			dts := pt.BaseTime
			var trackStart time.Duration
			for i, s := range pt.Samples {
				d, err := ticks(dts, ts)
				if err != nil {
					return Fragment{}, err
				}
				pts := d
				if s.PTSOffset != 0 {
					off := time.Duration(s.PTSOffset) * time.Second / time.Duration(ts)
					pts = d + off
				}
				if i == 0 {
					trackStart = d
				}
				ms := media.Sample{Track: t.ID, DTS: d, PTS: pts, Keyframe: true}
				if t.IsVideo() {
					var au h264.AVCC
					if err := au.Unmarshal(s.Payload); err != nil {
						return Fragment{}, fmt.Errorf("%w: fmp4 part: track %d: %v", media.ErrBadInput, t.ID, err)
					}
					ms.NALUs = au
					ms.Keyframe = h264.IsRandomAccess(au)
					if !sawVideo {
						sawVideo = true
						fr.Independent = ms.Keyframe
					}
				} else {
					ms.Data = s.Payload
				}
				fr.Samples = append(fr.Samples, ms)
				if first || d < fr.Start {
					fr.Start = d
				}
				first = false
				if dts > math.MaxUint64-uint64(s.Duration) {
					return Fragment{}, fmt.Errorf("%w: fmp4 part: decode time overflows", media.ErrBadInput)
				}
				dts += uint64(s.Duration)
			}
			if len(pt.Samples) > 0 {
				e, err := ticks(dts, ts)
				if err != nil {
					return Fragment{}, err
				}
				span = max(span, e-trackStart)
				if t.IsVideo() {
					vspan += e - trackStart
				}
			}
		}
	}
	if first {
		return Fragment{}, fmt.Errorf("%w: fmp4 part: no sample", media.ErrBadInput)
	}
	if hasVideo && !sawVideo {
		fr.Independent = false
	}
	fr.Duration = span
	if sawVideo {
		fr.Duration = vspan
	}
	slices.SortStableFunc(fr.Samples, func(a, b media.Sample) int { return cmp.Compare(a.DTS, b.DTS) })
	for i := range fr.Samples {
		fr.Samples[i].Wallclock = wallclock.Add(fr.Samples[i].DTS - fr.Start)
	}
	return fr, nil
}

// maxSeconds keeps every timestamp convertible to a time.Duration.
const maxSeconds = uint64(math.MaxInt64/int64(time.Second)) - 1

// ticks converts a timestamp in a track's timescale to a duration.
func ticks(v, timescale uint64) (time.Duration, error) {
	s := v / timescale
	if s >= maxSeconds {
		return 0, fmt.Errorf("%w: fmp4 part: timestamp %d/%d out of range", media.ErrBadInput, v, timescale)
	}
	return time.Duration(s)*time.Second + time.Duration((v%timescale)*uint64(time.Second)/timescale), nil
}
