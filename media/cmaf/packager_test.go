package cmaf

import (
	"errors"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/media"
)

func TestCases(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(c.cfg, c.ops)
			checkCase(t, c, r)
			if testing.Verbose() && r.stats != nil {
				t.Logf("%d inits, %d parts, dropped video %d audio %d empty %d, rebases %d",
					len(r.inits), len(r.parts), r.stats.DroppedVideo.Load(), r.stats.DroppedAudio.Load(),
					r.stats.DroppedEmpty.Load(), r.stats.Rebases.Load())
			}
		})
	}
}

func TestDefaultMaxPartSizeFitsAChunk(t *testing.T) {
	if DefaultMaxPartSize+1024 > chunk.MaxPayloadSize {
		t.Fatalf("DefaultMaxPartSize %d leaves too little room under mesh.MaxPayloadSize %d", DefaultMaxPartSize, chunk.MaxPayloadSize)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{{PartDuration: time.Millisecond}, {MaxLag: -1}, {MaxPartSize: 100}} {
		if _, err := New(cfg, func(Output) error { return nil }); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := New(Config{}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("New with nil Emit: %v", err)
	}
}

func TestSampleBeforeTracks(t *testing.T) {
	p, _ := New(Config{}, func(Output) error { return nil })
	err := p.Sample(media.Sample{Track: 1, Data: []byte{1}})
	if !errors.Is(err, ErrNoTracks) || !errors.Is(err, media.ErrBadInput) {
		t.Fatalf("got %v", err)
	}
}

// The first part starts at the first keyframe: its wallclock is the
// keyframe's, and the parts of one segment follow each other.
func TestPartTimes(t *testing.T) {
	c := cases[0]
	r := run(c.cfg, c.ops)
	if r.err != nil {
		t.Fatal(r.err)
	}
	first := c.ops[1].sample.Wallclock
	for _, o := range c.ops {
		if o.kind == opSample && o.sample.Track == videoID && o.sample.Keyframe {
			first = o.sample.Wallclock
			break
		}
	}
	at := first
	for i, p := range r.parts {
		if !p.Wallclock.Equal(at) {
			t.Fatalf("part %d wallclock %v, want %v", i, p.Wallclock, at)
		}
		if p.Duration != 200*time.Millisecond && i < len(r.parts)-1 {
			t.Fatalf("part %d lasts %v", i, p.Duration)
		}
		if want := i%5 == 0; p.Independent != want {
			t.Fatalf("part %d independent %v, want %v", i, p.Independent, want)
		}
		at = at.Add(p.Duration)
	}
}

// A packager keeps no reference to a sample's buffers.
func TestSampleBuffersNotRetained(t *testing.T) {
	c := cases[0]
	want := run(c.cfg, c.ops)
	var got result
	p, _ := New(Config{}, func(o Output) error {
		if o.Init == nil {
			got.parts = append(got.parts, o.Part)
		}
		return nil
	})
	for _, o := range c.ops {
		var err error
		switch o.kind {
		case opTracks:
			err = p.Tracks(o.tracks)
		case opSample:
			s := o.sample
			var bufs [][]byte
			for _, n := range s.NALUs {
				bufs = append(bufs, append([]byte(nil), n...))
			}
			s.NALUs, s.Data = bufs, append([]byte(nil), s.Data...)
			err = p.Sample(s)
			for _, b := range append(bufs, s.Data) {
				clear(b) // the source reuses its buffers
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(got.parts) != len(want.parts) {
		t.Fatalf("%d parts, want %d", len(got.parts), len(want.parts))
	}
	for i := range want.parts {
		if string(got.parts[i].Payload) != string(want.parts[i].Payload) {
			t.Fatalf("part %d differs", i)
		}
	}
}

// Memory stays bounded when audio comes but video never does: what is
// held before the first keyframe is MaxLag of audio.
func TestAudioWithoutVideoIsBounded(t *testing.T) {
	p, _ := New(Config{VideoTimeout: time.Hour}, func(Output) error { return nil })
	s := base.with(func(s *stream) { s.noVideo, s.seconds = true, 120 })
	for _, o := range s.ops() {
		var err error
		if o.kind == opTracks {
			err = p.Tracks(o.tracks)
		} else {
			err = p.Sample(o.sample)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	a := p.tracks[1]
	if held := a.q[len(a.q)-1].dts - a.q[0].dts; held > DefaultMaxLag {
		t.Fatalf("holding %v of audio (%d samples)", held, len(a.q))
	}
}
