package rtmp

import (
	"bytes"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/peerscope/peerscope/media"
)

// timeline turns what the publisher sends into the samples a sink gets:
// it holds everything back until the first keyframe, rebases timestamps
// there, drops samples that go back in time, keeps the parameter sets
// current and puts them in band on every keyframe, and stamps wallclocks.
// It does no I/O and reads no clock: now comes in with each call.
type timeline struct {
	videoID, audioID int // 0 when the track is absent

	sps, pps []byte

	started bool          // the first keyframe (or, without video, the first sample) went out
	base    time.Duration // raw DTS of that sample

	last map[int]time.Duration // last DTS handed on, per track

	// The wallclock anchor: when the first media message arrived, and its
	// raw DTS.
	anchorWall time.Time
	anchorDTS  time.Duration
	anchored   bool
}

func newTimeline(tracks []media.Track) *timeline {
	t := &timeline{last: make(map[int]time.Duration)}
	for _, tr := range tracks {
		switch tr.Codec {
		case media.H264:
			t.videoID = tr.ID
			t.sps, t.pps = tr.SPS, tr.PPS
		case media.AAC:
			t.audioID = tr.ID
		}
	}
	return t
}

// anchor records when the first media message arrived; later calls are
// ignored.
func (t *timeline) anchor(at time.Time, dts time.Duration) {
	if !t.anchored {
		t.anchorWall, t.anchorDTS, t.anchored = at, dts, true
	}
}

// video takes one H.264 access unit; ok is false when nothing goes to the
// sink (a parameter-set update, a frame before the first keyframe, a DTS
// going back in time).
func (t *timeline) video(now time.Time, pts, dts time.Duration, au [][]byte) (s media.Sample, ok bool) {
	var sps, pps []byte
	pictures := 0
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSEI:
		default:
			pictures++
		}
	}
	if sps != nil && !bytes.Equal(sps, t.sps) {
		t.sps = bytes.Clone(sps)
	}
	if pps != nil && !bytes.Equal(pps, t.pps) {
		t.pps = bytes.Clone(pps)
	}
	if pictures == 0 {
		return s, false
	}
	key := h264.IsRandomAccess(au)
	if key && (sps == nil || pps == nil) && t.sps != nil && t.pps != nil {
		withParams := make([][]byte, 0, len(au)+2)
		if sps == nil {
			withParams = append(withParams, t.sps)
		}
		if pps == nil {
			withParams = append(withParams, t.pps)
		}
		au = append(withParams, au...)
	}
	if !t.started {
		if !key {
			return s, false
		}
		t.started, t.base = true, dts
	}
	s = media.Sample{Track: t.videoID, PTS: pts - t.base, DTS: dts - t.base, Keyframe: key, NALUs: au}
	return s, t.stamp(now, dts, &s)
}

// audio takes one AAC access unit.
func (t *timeline) audio(now time.Time, dts time.Duration, au []byte) (s media.Sample, ok bool) {
	if !t.started {
		if t.videoID != 0 {
			return s, false // audio waits for the picture
		}
		t.started, t.base = true, dts
	}
	if dts < t.base {
		return s, false
	}
	s = media.Sample{Track: t.audioID, PTS: dts - t.base, DTS: dts - t.base, Keyframe: true, Data: au}
	return s, t.stamp(now, dts, &s)
}

// stamp drops a sample whose DTS went back on its track and sets its
// wallclock.
func (t *timeline) stamp(now time.Time, rawDTS time.Duration, s *media.Sample) bool {
	if last, seen := t.last[s.Track]; seen && s.DTS < last {
		return false
	}
	t.last[s.Track] = s.DTS
	s.Wallclock = now
	if t.anchored {
		if w := t.anchorWall.Add(rawDTS - t.anchorDTS); w.Before(now) {
			s.Wallclock = w
		}
	}
	return true
}
