package rtmp

import (
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
)

func TestTimeline(t *testing.T) {
	ms := time.Millisecond
	sps, pps := []byte{0x67, 1}, []byte{0x68, 2}
	sps2 := []byte{0x67, 9}
	idr, p, b := []byte{0x65, 0}, []byte{0x41, 0}, []byte{0x01, 0}
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	wall0 := now.Add(-5 * time.Second)

	type in struct {
		video    bool
		pts, dts time.Duration
		au       [][]byte
	}
	type out struct {
		ok       bool
		pts, dts time.Duration
		key      bool
		nalus    int
	}
	steps := []struct {
		name string
		in   in
		want out
	}{
		{"audio before the first keyframe waits", in{false, 900 * ms, 900 * ms, [][]byte{{1}}}, out{}},
		{"a P-frame before the first keyframe waits", in{true, 950 * ms, 950 * ms, [][]byte{p}}, out{}},
		{"config only: no sample", in{true, 1000 * ms, 1000 * ms, [][]byte{sps, pps}}, out{}},
		{"first keyframe: DTS 0, SPS and PPS put in band", in{true, 1080 * ms, 1000 * ms, [][]byte{idr}}, out{true, 80 * ms, 0, true, 3}},
		{"audio earlier than the keyframe is dropped", in{false, 990 * ms, 990 * ms, [][]byte{{1}}}, out{}},
		{"audio after it", in{false, 1010 * ms, 1010 * ms, [][]byte{{1}}}, out{true, 10 * ms, 10 * ms, true, 0}},
		{"P-frame", in{true, 1200 * ms, 1040 * ms, [][]byte{p}}, out{true, 200 * ms, 40 * ms, false, 1}},
		{"B-frame: PTS before the P's", in{true, 1120 * ms, 1080 * ms, [][]byte{b}}, out{true, 120 * ms, 80 * ms, false, 1}},
		{"DTS going back is dropped", in{true, 1100 * ms, 1060 * ms, [][]byte{p}}, out{}},
		{"new SPS mid-stream", in{true, 1200 * ms, 1200 * ms, [][]byte{sps2, pps}}, out{}},
		{"next keyframe carries the new SPS", in{true, 1300 * ms, 1300 * ms, [][]byte{idr}}, out{true, 300 * ms, 300 * ms, true, 3}},
		{"keyframe with its own SPS/PPS is left alone", in{true, 1400 * ms, 1400 * ms, [][]byte{sps, pps, idr}}, out{true, 400 * ms, 400 * ms, true, 3}},
	}
	tl := newTimeline([]media.Track{{ID: 1, Codec: media.H264, SPS: sps, PPS: pps}, {ID: 2, Codec: media.AAC}})
	tl.anchor(wall0, 900*ms)
	for _, st := range steps {
		var s media.Sample
		var ok bool
		if st.in.video {
			s, ok = tl.video(now, st.in.pts, st.in.dts, st.in.au)
		} else {
			s, ok = tl.audio(now, st.in.dts, st.in.au[0])
		}
		if ok != st.want.ok {
			t.Fatalf("%s: ok = %v", st.name, ok)
		}
		if !ok {
			continue
		}
		if s.PTS != st.want.pts || s.DTS != st.want.dts || s.Keyframe != st.want.key || (st.in.video && len(s.NALUs) != st.want.nalus) {
			t.Fatalf("%s: got PTS %v DTS %v key %v %d NALUs; want %+v", st.name, s.PTS, s.DTS, s.Keyframe, len(s.NALUs), st.want)
		}
		// Wallclock: the anchor plus media time, while that is in the past.
		if want := wall0.Add(st.in.dts - 900*ms); !s.Wallclock.Equal(want) {
			t.Fatalf("%s: wallclock %v, want %v", st.name, s.Wallclock, want)
		}
		if st.name == "next keyframe carries the new SPS" && string(s.NALUs[0]) != string(sps2) {
			t.Fatalf("%s: first NALU %x", st.name, s.NALUs[0])
		}
	}

	// A sender ahead of real time never gets a wallclock in the future.
	s, ok := tl.video(wall0, 9*time.Second, 9*time.Second, [][]byte{p})
	if !ok || !s.Wallclock.Equal(wall0) {
		t.Fatalf("wallclock %v for media ahead of the clock, want now (%v)", s.Wallclock, wall0)
	}
}

func TestTimelineAudioOnly(t *testing.T) {
	tl := newTimeline([]media.Track{{ID: 1, Codec: media.AAC}})
	now := time.Now()
	s, ok := tl.audio(now, 500*time.Millisecond, []byte{1})
	if !ok || s.DTS != 0 || s.Track != 1 || !s.Wallclock.Equal(now) {
		t.Fatalf("audio-only first sample: %+v %v", s, ok)
	}
}
