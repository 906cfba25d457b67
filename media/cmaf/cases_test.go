package cmaf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/peerscope/peerscope/media"
)

// The one table of cases that the unit, fuzz and benchmark tests share.
// A case is a script of operations on a Packager (tracks, samples, flush)
// and what must come out; the fuzz test seeds its corpus with every case's
// script, encoded (encodeOps), and the benchmarks run the scripts.

// Parameter sets (from mediacommon's SPS tests): 352x288 and 1280x720.
var (
	sps1 = []byte{0x67, 0x64, 0x00, 0x0c, 0xac, 0x3b, 0x50, 0xb0, 0x4b, 0x42, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3d, 0x08}
	sps2 = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6c, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18, 0xcb}
	pps1 = []byte{0x68, 0xee, 0x3c, 0x80}
	// AAC-LC, 48 kHz, stereo.
	aacConfig = []byte{0x11, 0x90}
)

const (
	videoID = 1
	audioID = 2
)

type opKind int

const (
	opSample opKind = iota
	opTracks
	opFlush
)

type op struct {
	kind   opKind
	tracks []media.Track
	sample media.Sample
}

// stream describes a synthetic source: the generator makes its operations.
type stream struct {
	fps        float64 // 0: no video track
	gop        int     // frames from one keyframe to the next
	bframes    bool    // I P B B P B B ...: PTS runs 2 frames ahead where needed
	audio      media.Codec
	seconds    float64
	keyBytes   int // video keyframe size
	frameBytes int // other video frames
	audioBytes int
	audioLead  time.Duration // audio arrives this far ahead of video
	leadP      int           // non-keyframes before the first keyframe
	trackSPS   bool          // SPS/PPS in the Track, not in-band
	spsChange  int           // frame index of a keyframe where the SPS changes (0: none)
	start      time.Duration // DTS of the first frame
	noVideo    bool          // declare video, send none
}

func (s stream) tracks() []media.Track {
	var ts []media.Track
	if s.fps > 0 {
		t := media.Track{ID: videoID, Codec: media.H264, ClockRate: 90000}
		if s.trackSPS {
			t.SPS, t.PPS = sps1, pps1
		}
		ts = append(ts, t)
	}
	switch s.audio {
	case media.Opus:
		ts = append(ts, media.Track{ID: audioID, Codec: media.Opus, ClockRate: 48000, ChannelCount: 2})
	case media.AAC:
		ts = append(ts, media.Track{ID: audioID, Codec: media.AAC, ClockRate: 48000, ChannelCount: 2, AudioConfig: aacConfig})
	}
	return ts
}

func payload(n int, first byte) []byte {
	b := make([]byte, n)
	b[0] = first
	for i := 1; i < n; i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// ops returns Tracks followed by the samples, in arrival order.
func (s stream) ops() []op {
	type timed struct {
		at time.Duration
		s  media.Sample
	}
	var all []timed
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if s.fps > 0 && !s.noVideo {
		frame := time.Duration(float64(time.Second) / s.fps)
		n := int(s.seconds * s.fps)
		key, p := payload(s.keyBytes, 0x65), payload(s.frameBytes, 0x41)
		for i := -s.leadP; i < n; i++ {
			dts := s.start + time.Duration(math.Round(float64(i)*float64(time.Second)/s.fps))
			pts := dts
			isKey := i >= 0 && i%s.gop == 0
			if s.bframes && i >= 0 {
				// Decode order I P B B P B B, display order I B B P B B P:
				// with one frame of delay, the P shows 3 frames after it
				// is decoded, a B as it is decoded.
				switch d := i % s.gop; {
				case d == 0:
					pts = dts + frame
				case d%3 == 1:
					pts = dts + 3*frame
				}
			}
			smp := media.Sample{Track: videoID, DTS: dts, PTS: pts, Keyframe: isKey, Wallclock: epoch.Add(dts)}
			if isKey {
				smp.NALUs = [][]byte{{0x09, 0xf0}, key}
				if !s.trackSPS {
					sps := sps1
					if s.spsChange > 0 && i >= s.spsChange {
						sps = sps2
					}
					smp.NALUs = [][]byte{{0x09, 0xf0}, sps, pps1, key}
				}
			} else {
				smp.NALUs = [][]byte{{0x09, 0xf0}, p}
			}
			all = append(all, timed{dts, smp})
		}
	}
	if s.audio != "" {
		dur, first := 20*time.Millisecond, byte(0xfc) // Opus: CELT FB 20 ms, 1 frame
		if s.audio == media.AAC {
			dur, first = 1024*time.Second/48000, 0x21
		}
		data := payload(s.audioBytes, first)
		lead := time.Duration(s.leadP) * time.Duration(float64(time.Second)/max(s.fps, 1))
		for dts := s.start - lead; dts < s.start+time.Duration(s.seconds*float64(time.Second)); dts += dur {
			all = append(all, timed{dts - s.audioLead, media.Sample{Track: audioID, DTS: dts, PTS: dts, Keyframe: true, Data: data, Wallclock: epoch.Add(dts)}})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	ops := []op{{kind: opTracks, tracks: s.tracks()}}
	for _, t := range all {
		ops = append(ops, op{kind: opSample, sample: t.s})
	}
	return ops
}

// want is what must come out of a case.
type want struct {
	err          error // Sample or Tracks fails with this (errors.Is)
	inits        int
	parts        int // 0: not checked
	droppedVideo int64
	// exact: every sample from the first keyframe on comes out with exactly
	// its input timestamps, and tracks are contiguous across parts.
	exact bool
	// longParts allows parts longer than the target (stalls).
	longParts bool
}

type packCase struct {
	name string
	cfg  Config
	ops  []op
	want want
}

// base is 10 s of 30 fps H.264 with a keyframe a second, and Opus.
var base = stream{fps: 30, gop: 30, audio: media.Opus, seconds: 10, keyBytes: 20000, frameBytes: 1500, audioBytes: 160}

func (s stream) with(f func(*stream)) stream { f(&s); return s }

func mutate(ops []op, f func(i int, o *op) []op) []op {
	var out []op
	for i := range ops {
		o := ops[i]
		out = append(out, f(i, &o)...)
	}
	return out
}

var cases = []packCase{
	{
		name: "h264 opus 30fps",
		ops:  base.ops(),
		want: want{inits: 1, parts: 50, exact: true},
	},
	{
		// 2.5 Mb/s of video (keyframes 60 KB), 64 kb/s of Opus: the benchmark's case.
		name: "h264 opus 2.5Mbps",
		ops:  base.with(func(s *stream) { s.keyBytes, s.frameBytes = 60000, 8400 }).ops(),
		want: want{inits: 1, parts: 50, exact: true},
	},
	{
		name: "h264 aac b-frames 25fps",
		ops:  base.with(func(s *stream) { s.fps, s.gop, s.bframes, s.audio, s.audioBytes = 25, 48, true, media.AAC, 300 }).ops(),
		want: want{inits: 1, parts: 52, exact: true},
	},
	{
		name: "24fps parts stay under target",
		ops:  base.with(func(s *stream) { s.fps, s.gop, s.seconds = 24, 48, 4 }).ops(),
		want: want{inits: 1, parts: 24, exact: true},
	},
	{
		name: "leading non-keyframes dropped",
		ops:  base.with(func(s *stream) { s.leadP, s.seconds = 17, 3 }).ops(),
		want: want{inits: 1, parts: 15, droppedVideo: 17, exact: true},
	},
	{
		name: "parameter sets only in track",
		ops:  base.with(func(s *stream) { s.trackSPS, s.seconds = true, 2 }).ops(),
		want: want{inits: 1, parts: 10, exact: true},
	},
	{
		name: "sps change makes a new init",
		ops:  base.with(func(s *stream) { s.spsChange, s.seconds = 60, 4 }).ops(),
		want: want{inits: 2, parts: 20, exact: true},
	},
	{
		name: "audio muxed 700ms ahead",
		ops:  base.with(func(s *stream) { s.audioLead, s.seconds = 700*time.Millisecond, 3 }).ops(),
		want: want{inits: 1, parts: 15, exact: true},
	},
	{
		name: "negative start dts",
		ops:  base.with(func(s *stream) { s.start, s.seconds, s.bframes = -5*time.Second, 2, true }).ops(),
		want: want{inits: 1, parts: 10, exact: true},
	},
	{
		name: "audio only",
		ops:  base.with(func(s *stream) { s.fps, s.seconds = 0, 2 }).ops(),
		want: want{inits: 1, parts: 10, exact: true},
	},
	{
		name: "video only",
		ops:  base.with(func(s *stream) { s.audio, s.seconds = "", 2 }).ops(),
		want: want{inits: 1, parts: 10, exact: true},
	},
	{
		name: "audio but never video",
		ops:  base.with(func(s *stream) { s.noVideo, s.seconds = true, 30 }).ops(),
		want: want{err: ErrNoKeyframe},
	},
	{
		name: "keyframes without parameter sets",
		ops: mutate(base.with(func(s *stream) { s.seconds = 30 }).ops(), func(_ int, o *op) []op {
			if o.kind == opSample && o.sample.Track == videoID && o.sample.Keyframe {
				o.sample.NALUs = o.sample.NALUs[3:]
			}
			return []op{*o}
		}),
		want: want{err: ErrNoKeyframe},
	},
	{
		name: "corrupt SPS mid-stream costs one picture",
		ops: mutate(base.with(func(s *stream) { s.seconds = 2 }).ops(), func(_ int, o *op) []op {
			if o.kind == opSample && o.sample.Track == videoID && o.sample.Keyframe && o.sample.DTS == time.Second {
				o.sample.NALUs = [][]byte{{0x67, 0xff, 0xff}, pps1, o.sample.NALUs[3]}
			}
			return []op{*o}
		}),
		want: want{inits: 1, droppedVideo: 1, longParts: true}, // the missing picture leaves a gap
	},
	{
		name: "unsupported codec",
		ops:  []op{{kind: opTracks, tracks: []media.Track{{ID: 1, Codec: "vp8", ClockRate: 90000}}}},
		want: want{err: media.ErrUnsupportedCodec},
	},
	{
		name: "dts jumps back (encoder restart)",
		ops: mutate(base.with(func(s *stream) { s.seconds = 4 }).ops(), func(i int, o *op) []op {
			if o.kind == opSample && o.sample.DTS >= 2*time.Second {
				o.sample.DTS -= 2 * time.Second
				o.sample.PTS -= 2 * time.Second
			}
			return []op{*o}
		}),
		want: want{inits: 1, parts: 20},
	},
	{
		name: "dts jumps forward an hour",
		ops: mutate(base.with(func(s *stream) { s.seconds = 4 }).ops(), func(i int, o *op) []op {
			if o.kind == opSample && o.sample.DTS >= 2*time.Second {
				o.sample.DTS += time.Hour
				o.sample.PTS += time.Hour
			}
			return []op{*o}
		}),
		want: want{inits: 1, parts: 20},
	},
	{
		name: "strict timestamps refuse a jump",
		cfg:  Config{StrictTimestamps: true},
		ops: mutate(base.with(func(s *stream) { s.seconds = 4 }).ops(), func(i int, o *op) []op {
			if o.kind == opSample && o.sample.DTS >= 2*time.Second {
				o.sample.DTS -= 2 * time.Second
				o.sample.PTS -= 2 * time.Second
			}
			return []op{*o}
		}),
		want: want{err: ErrDiscontinuity},
	},
	{
		name: "repeated and tiny timestamps",
		ops: mutate(base.with(func(s *stream) { s.seconds = 2 }).ops(), func(i int, o *op) []op {
			if o.kind == opSample && i%7 == 3 {
				o.sample.DTS = o.sample.DTS / time.Millisecond * time.Millisecond
				o2 := *o
				o2.sample.DTS += time.Microsecond
				return []op{*o, o2, *o}
			}
			return []op{*o}
		}),
		want: want{inits: 1},
	},
	{
		name: "video stalls for 3s",
		ops: mutate(base.with(func(s *stream) { s.seconds = 8 }).ops(), func(i int, o *op) []op {
			if o.kind == opSample && o.sample.Track == videoID && o.sample.DTS > 2*time.Second && o.sample.DTS < 5*time.Second {
				return nil
			}
			return []op{*o}
		}),
		want: want{inits: 1, longParts: true},
	},
	{
		name: "encoder reconnects",
		ops: func() []op {
			s := base.with(func(s *stream) { s.seconds = 2 })
			return append(s.ops(), s.ops()...)
		}(),
		want: want{inits: 1, parts: 20},
	},
	{
		name: "empty samples",
		ops: mutate(base.with(func(s *stream) { s.seconds = 2 }).ops(), func(i int, o *op) []op {
			e := op{kind: opSample, sample: media.Sample{Track: o.sample.Track, DTS: o.sample.DTS}}
			if o.kind == opSample && i%5 == 0 {
				return []op{e, *o}
			}
			return []op{*o}
		}),
		want: want{inits: 1, parts: 10},
	},
	{
		name: "sample larger than a part",
		ops: mutate(base.with(func(s *stream) { s.seconds = 1 }).ops(), func(i int, o *op) []op {
			if o.kind == opSample && o.sample.Track == videoID && o.sample.Keyframe {
				o.sample.NALUs = append(o.sample.NALUs, make([]byte, DefaultMaxPartSize))
			}
			return []op{*o}
		}),
		want: want{err: ErrTooLarge},
	},
	{
		name: "sample for an unknown track",
		ops:  []op{{kind: opTracks, tracks: base.tracks()}, {kind: opSample, sample: media.Sample{Track: 9, Data: []byte{1}}}},
		want: want{err: ErrNoTracks},
	},
}

// result is what a run of a case produced.
type result struct {
	inits []Output
	parts []media.Part
	order []bool // true: init, in emission order
	err   error
	stats *Stats
}

func run(cfg Config, ops []op) result {
	var r result
	p, err := New(cfg, func(o Output) error {
		if o.Init != nil {
			r.inits = append(r.inits, o)
		} else {
			r.parts = append(r.parts, o.Part)
		}
		r.order = append(r.order, o.Init != nil)
		return nil
	})
	if err != nil {
		r.err = err
		return r
	}
	r.stats = p.Stats()
	for _, o := range ops {
		switch o.kind {
		case opTracks:
			err = p.Tracks(o.tracks)
		case opSample:
			err = p.Sample(o.sample)
		case opFlush:
			err = p.Flush()
		}
		if err != nil {
			r.err = err
			return r
		}
	}
	r.err = p.Flush()
	return r
}

// parsed is one sample as read back from the parts.
type parsed struct {
	dts    int64 // ticks
	cto    int32
	size   int
	sync   bool
	part   int
	inPart int
}

// checkResult reads every init and part back with mediacommon and checks
// the invariants that hold for any input: parts parse, each track's DTS
// strictly increases, independent parts start with a video keyframe, parts
// respect the target duration. It returns the samples per track.
func checkResult(t testing.TB, cfg Config, r result, allowLong bool) map[int][]parsed {
	t.Helper()
	cfg, _ = cfg.withDefaults()
	if len(r.order) > 0 && !r.order[0] {
		t.Fatalf("first output is a part, not an init")
	}
	// The init in force for each part.
	var partInit []map[int]uint32
	var timescale map[int]uint32
	ni := 0
	for _, isInit := range r.order {
		if !isInit {
			partInit = append(partInit, timescale)
			continue
		}
		var init fmp4.Init
		if err := init.Unmarshal(bytes.NewReader(r.inits[ni].Init)); err != nil {
			t.Fatalf("init does not parse: %v", err)
		}
		ni++
		timescale = map[int]uint32{}
		for _, tr := range init.Tracks {
			timescale[tr.ID] = tr.TimeScale
		}
	}
	out := map[int][]parsed{}
	for i, part := range r.parts {
		timescale := partInit[i]
		var ps fmp4.Parts
		if err := ps.Unmarshal(part.Payload); err != nil {
			t.Fatalf("part %d does not parse: %v", i, err)
		}
		if len(ps) != 1 {
			t.Fatalf("part %d holds %d fragments", i, len(ps))
		}
		if part.Duration <= 0 {
			t.Fatalf("part %d lasts %v", i, part.Duration)
		}
		if !allowLong && part.Duration > cfg.PartDuration+time.Millisecond && i < len(r.parts)-1 {
			n := 0
			for _, tr := range ps[0].Tracks {
				if tr.ID == videoID {
					n = len(tr.Samples)
				}
			}
			if n > 1 {
				t.Errorf("part %d lasts %v with %d video samples, over the %v target", i, part.Duration, n, cfg.PartDuration)
			}
		}
		for k, tr := range ps[0].Tracks {
			if timescale[tr.ID] == 0 {
				t.Fatalf("part %d: track %d not in any init", i, tr.ID)
			}
			if k == 0 && part.Independent && timescale[videoID] != 0 && (tr.ID != videoID || tr.Samples[0].IsNonSyncSample) {
				t.Fatalf("independent part %d does not start with a video keyframe", i)
			}
			prev := out[tr.ID]
			dts := int64(tr.BaseTime)
			if len(prev) > 0 && dts <= prev[len(prev)-1].dts {
				t.Fatalf("part %d track %d: tfdt %d not after %d", i, tr.ID, dts, prev[len(prev)-1].dts)
			}
			for j, s := range tr.Samples {
				if s.Duration == 0 {
					t.Fatalf("part %d track %d sample %d: zero duration", i, tr.ID, j)
				}
				out[tr.ID] = append(out[tr.ID], parsed{dts: dts, cto: s.PTSOffset, size: len(s.Payload), sync: !s.IsNonSyncSample, part: i, inPart: j})
				dts += int64(s.Duration)
			}
		}
	}
	return out
}

// expected models an exact case: the samples that must come out, per
// track, with their DTS in ticks from the first keyframe.
func expected(ops []op) map[int][]parsed {
	var origin time.Duration
	started := false
	haveTrackSPS := false
	out := map[int][]parsed{}
	rate := map[int]int64{}
	for _, o := range ops {
		if o.kind == opSample && o.sample.Track == videoID && o.sample.Keyframe {
			started, origin = true, o.sample.DTS
			break
		}
	}
	for _, o := range ops {
		if o.kind == opTracks {
			for _, tr := range o.tracks {
				rate[tr.ID] = int64(tr.ClockRate)
				haveTrackSPS = haveTrackSPS || len(tr.SPS) > 0
			}
			if len(o.tracks) == 1 && o.tracks[0].Codec != media.H264 {
				started = true // audio-only: starts at once
				origin = -1
			}
			continue
		}
		s := o.sample
		if started && origin == -1 {
			origin = s.DTS
		}
		if !started || s.DTS < origin {
			continue
		}
		size, sync := len(s.Data), true
		if s.Track == videoID {
			size, sync = 0, s.Keyframe
			for _, n := range s.NALUs[1:] {
				size += 4 + len(n)
			}
		}
		r := rate[s.Track]
		cto := toTicks(s.PTS-origin, r) - toTicks(s.DTS-origin, r)
		out[s.Track] = append(out[s.Track], parsed{dts: toTicks(s.DTS-origin, r), cto: int32(cto), size: size, sync: sync})
	}
	return out
}

func checkCase(t testing.TB, c packCase, r result) {
	t.Helper()
	if c.want.err != nil {
		if !errors.Is(r.err, c.want.err) {
			t.Fatalf("error %v, want %v", r.err, c.want.err)
		}
		if !errors.Is(r.err, media.ErrBadInput) {
			t.Fatalf("error %v does not wrap media.ErrBadInput", r.err)
		}
		return
	}
	if r.err != nil {
		t.Fatalf("error: %v", r.err)
	}
	got := checkResult(t, c.cfg, r, c.want.longParts)
	if len(r.inits) != c.want.inits {
		t.Errorf("%d inits, want %d", len(r.inits), c.want.inits)
	}
	if c.want.parts != 0 && len(r.parts) != c.want.parts {
		t.Errorf("%d parts, want %d", len(r.parts), c.want.parts)
	}
	if got := r.stats.DroppedVideo.Load(); got != c.want.droppedVideo {
		t.Errorf("dropped %d video samples, want %d", got, c.want.droppedVideo)
	}
	if !c.want.exact {
		return
	}
	want := expected(c.ops)
	for id, ws := range want {
		gs := got[id]
		if len(gs) != len(ws) {
			t.Fatalf("track %d: %d samples, want %d", id, len(gs), len(ws))
		}
		for i := range ws {
			g, w := gs[i], ws[i]
			if g.dts != w.dts || g.cto != w.cto || g.size != w.size || g.sync != w.sync {
				t.Fatalf("track %d sample %d (part %d #%d): got dts %d cto %d size %d sync %v, want dts %d cto %d size %d sync %v",
					id, i, g.part, g.inPart, g.dts, g.cto, g.size, g.sync, w.dts, w.cto, w.size, w.sync)
			}
		}
	}
	// Part durations add up to the media timeline.
	var total time.Duration
	for _, p := range r.parts {
		total += p.Duration
	}
	if ws := want[videoID]; len(ws) > 1 {
		span := time.Duration(ws[len(ws)-1].dts-ws[0].dts) * time.Second / 90000
		if total < span || total > span+100*time.Millisecond {
			t.Errorf("parts add up to %v, video spans %v", total, span)
		}
	}
}

// encodeOps writes a script in the fuzz input format (see decodeOps).
func encodeOps(ops []op) []byte {
	b := []byte{0}
	var lastDTS time.Duration
	for _, o := range ops {
		switch o.kind {
		case opTracks:
			layout := byte(0)
			hasVideo, audio := false, media.Codec("")
			for _, t := range o.tracks {
				if t.Codec == media.H264 {
					hasVideo = true
				} else {
					audio = t.Codec
				}
			}
			switch {
			case hasVideo && audio == media.AAC:
				layout = 1
			case !hasVideo:
				layout = 2
			case audio == "":
				layout = 3
			}
			if len(b) == 1 {
				b[0] = layout
			} else {
				b = append(b, 2|layout<<6)
			}
		case opFlush:
			b = append(b, 3)
		case opSample:
			s := o.sample
			k := byte(0)
			if s.Track != videoID {
				k = 1
			}
			size := len(s.Data)
			var rawSPS []byte
			if s.Track == videoID {
				size = 0
				for _, n := range s.NALUs {
					size += len(n)
					if len(n) > 0 && n[0]&0x1f == 7 {
						k |= 8
						switch {
						case bytes.Equal(n, sps2):
							k |= 16
						case !bytes.Equal(n, sps1):
							k |= 64
							rawSPS = n[1:]
						}
					}
				}
			}
			if s.Keyframe {
				k |= 4
			}
			if size == 0 {
				k |= 32
			}
			b = append(b, k)
			if k&64 != 0 {
				b = binary.AppendUvarint(b, uint64(len(rawSPS)))
				b = append(b, rawSPS...)
			}
			b = binary.AppendVarint(b, int64((s.DTS-lastDTS)/time.Microsecond))
			b = binary.AppendVarint(b, int64((s.PTS-s.DTS)/time.Microsecond))
			b = binary.AppendUvarint(b, uint64(size))
			lastDTS = s.DTS
		}
	}
	return b
}

// decodeOps turns fuzz bytes into a script. Byte 0 picks the tracks
// (0 h264+opus, 1 h264+aac, 2 opus, 3 h264); then each operation is a kind
// byte (bits 0-1: 0 video, 1 audio, 2 tracks again with layout in bits
// 6-7, 3 flush; bit 2 keyframe; bit 3 in-band SPS/PPS; bit 4 the other SPS;
// bit 5 empty; bit 6 (samples) raw SPS bytes follow, uvarint length
// first), a varint DTS step and a varint composition offset in
// microseconds, and a uvarint payload size.
func decodeOps(b []byte) []op {
	if len(b) == 0 {
		return nil
	}
	layouts := [][]media.Track{
		{{ID: videoID, Codec: media.H264, ClockRate: 90000}, {ID: audioID, Codec: media.Opus, ClockRate: 48000, ChannelCount: 2}},
		{{ID: videoID, Codec: media.H264, ClockRate: 90000}, {ID: audioID, Codec: media.AAC, ClockRate: 48000, AudioConfig: aacConfig}},
		{{ID: audioID, Codec: media.Opus, ClockRate: 48000, ChannelCount: 2}},
		{{ID: videoID, Codec: media.H264, ClockRate: 90000}},
	}
	ops := []op{{kind: opTracks, tracks: layouts[b[0]%4]}}
	b = b[1:]
	var dts time.Duration
	total := uint64(0)
	for len(b) > 0 && len(ops) < 5000 && total < 8<<20 {
		k := b[0]
		b = b[1:]
		switch k & 3 {
		case 2:
			ops = append(ops, op{kind: opTracks, tracks: layouts[k>>6]})
			continue
		case 3:
			ops = append(ops, op{kind: opFlush})
			continue
		}
		var sps []byte
		if k&64 != 0 {
			n, m := binary.Uvarint(b)
			if m <= 0 || n > 64 || uint64(len(b)-m) < n {
				return ops
			}
			sps, b = b[m:m+int(n)], b[m+int(n):]
		}
		step, m := binary.Varint(b)
		if m <= 0 {
			return ops
		}
		b = b[m:]
		cto, m := binary.Varint(b)
		if m <= 0 {
			return ops
		}
		b = b[m:]
		size, m := binary.Uvarint(b)
		if m <= 0 {
			return ops
		}
		b = b[m:]
		size = min(size, 64<<10)
		total += size
		dts += time.Duration(step) * time.Microsecond
		s := media.Sample{DTS: dts, PTS: dts + time.Duration(cto)*time.Microsecond, Keyframe: k&4 != 0, Wallclock: time.Unix(0, 0).Add(dts)}
		if k&1 == 0 {
			s.Track = videoID
			if k&32 == 0 {
				first := byte(0x41)
				if k&4 != 0 {
					first = 0x65
				}
				s.NALUs = [][]byte{payload(int(size)+1, first)}
				if k&8 != 0 {
					p := sps1
					if k&16 != 0 {
						p = sps2
					}
					if sps != nil {
						p = append([]byte{0x67}, sps...)
					}
					s.NALUs = [][]byte{p, pps1, s.NALUs[0]}
				}
			}
		} else {
			s.Track = audioID
			if k&32 == 0 {
				s.Data = payload(int(size)+1, 0xfc)
			}
		}
		ops = append(ops, op{kind: opSample, sample: s})
	}
	return ops
}

func (c packCase) String() string { return fmt.Sprintf("%s (%d ops)", c.name, len(c.ops)) }
