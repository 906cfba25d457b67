package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/sample"
)

// runInput plays one input of the table through the source that reads its
// format, unpaced, into a recorder.
func runInput(tb testing.TB, c inputCase, in []byte) (*recorder, error) {
	r := newRecorder(tb)
	ctx := context.Background()
	var err error
	switch c.format {
	case FormatTS:
		err = NewTS(bytes.NewReader(in)).Run(ctx, r)
	case FormatMP4:
		var f *File
		f, err = NewFile(c.name, bytes.NewReader(in), WithPacing(false))
		if err == nil {
			err = f.Run(ctx, r)
		}
	}
	if err == nil {
		err = r.pack.Flush()
	}
	return r, err
}

func TestInputs(t *testing.T) {
	for _, c := range inputCases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r, err := runInput(t, c, c.input(t))
			if c.err != nil {
				if !errors.Is(err, c.err) || !errors.Is(err, media.ErrBadInput) {
					t.Fatalf("error %v, want %v wrapping media.ErrBadInput", err, c.err)
				}
				if errors.Is(err, ErrDemuxerPanic) {
					t.Fatalf("the demuxer panicked: %v", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("took %v to refuse", d)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.codecs(); !slices.Equal(got, c.codecs) {
				t.Errorf("tracks %v, want %v", got, c.codecs)
			}
			v, a := r.count(videoTrackID), r.count(audioTrackID)
			if (c.video >= 0 && v != c.video) || (c.audio >= 0 && a != c.audio) || v == 0 || a == 0 {
				t.Errorf("%d video and %d audio samples, want %d and %d", v, a, c.video, c.audio)
			}
			if r.inits != 1 || len(r.parts) == 0 || !r.parts[0].Independent {
				t.Errorf("%d inits, %d parts", r.inits, len(r.parts))
			}
			// Timestamps are the stream's: increasing per track, video
			// starting near 0.
			last := map[int]time.Duration{}
			for i, s := range r.samples {
				if l, ok := last[s.Track]; ok && s.DTS <= l {
					t.Fatalf("sample %d track %d: DTS %v after %v", i, s.Track, s.DTS, l)
				}
				last[s.Track] = s.DTS
				if s.PTS < s.DTS-time.Second || s.PTS > s.DTS+time.Second {
					t.Fatalf("sample %d: PTS %v, DTS %v", i, s.PTS, s.DTS)
				}
			}
		})
	}
}

// An endless stream of garbage is refused after a few MiB, whatever it
// looks like, instead of being read forever.
func TestEndlessGarbageIsRefused(t *testing.T) {
	program := programOnly(sample.TS())
	for name, r := range map[string]io.Reader{
		"random":            &endless{chunk: randomBytes(1<<20, 3)},
		"program, no media": &endless{chunk: bytes.Repeat(program, 1000)},
		"program then zero": io.MultiReader(bytes.NewReader(program), &endless{chunk: make([]byte, 1<<16)}),
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := NewTS(r).Run(context.Background(), newRecorder(t))
			if !errors.Is(err, media.ErrBadInput) {
				t.Fatalf("error %v", err)
			}
			t.Logf("refused after %v: %v", time.Since(start), err)
		})
	}
}

type endless struct {
	chunk []byte
	off   int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.chunk[e.off:])
	e.off = (e.off + n) % len(e.chunk)
	return n, nil
}

// A file is paced by DTS on the clock, stamped with the time each sample
// was due, and loops with timestamps that keep increasing.
func TestFilePacedAndLooped(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	start := clock.now
	f, err := NewFile("sample.ts", bytes.NewReader(sample.TS()), WithClock(clock), WithLoop())
	if err != nil {
		t.Fatal(err)
	}
	if f.Format() != FormatTS {
		t.Fatalf("format %v", f.Format())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := newRecorder(t)
	const loops = 3
	per := sample.VideoFrames + sample.AudioFrames
	r.after = func(n int) {
		if n == loops*per {
			cancel()
		}
	}
	if err := f.Run(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if len(r.tracks) != 1 {
		t.Fatalf("the sink was given tracks %d times", len(r.tracks))
	}
	last := map[int]time.Duration{}
	var prevWall time.Time
	d0 := r.samples[0].DTS
	for i, s := range r.samples {
		if l, ok := last[s.Track]; ok && (s.DTS <= l || s.DTS > l+100*time.Millisecond) {
			t.Fatalf("sample %d track %d: DTS %v after %v", i, s.Track, s.DTS, l)
		}
		last[s.Track] = s.DTS
		if want := start.Add(s.DTS - d0); !s.Wallclock.Equal(want) {
			t.Fatalf("sample %d: wallclock %v, want %v", i, s.Wallclock, want)
		}
		if s.Wallclock.Before(prevWall.Add(-time.Second)) {
			t.Fatalf("sample %d: wallclock goes back", i)
		}
		prevWall = s.Wallclock
	}
	if got := clock.Now().Sub(start); got < loops*sample.Duration*time.Second-100*time.Millisecond {
		t.Errorf("the clock moved %v for %d loops", got, loops)
	}
	// The packager saw one stream: no re-base, one init.
	if n := r.pack.Stats().Rebases.Load(); n != 0 || r.inits != 1 {
		t.Errorf("%d re-bases, %d inits", n, r.inits)
	}
	t.Logf("%d samples, %d parts, clock moved %v", len(r.samples), len(r.parts), clock.Now().Sub(start))
}

// Run ends when ctx ends, even while blocked reading a pipe.
func TestTSStopsOnCancel(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r := newRecorder(t)
	r.after = func(n int) {
		if n == 100 {
			cancel()
		}
	}
	done := make(chan error, 1)
	go func() { done <- NewTS(pr).Run(ctx, r) }()
	// Write a part of the clip and keep the pipe open. (The write ends
	// when the test closes the pipe.)
	go pw.Write(sample.TS()[:200000])
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestSniff(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want Format
	}{
		{sample.TS(), FormatTS},
		{sample.TS()[:100], FormatTS},
		{[]byte("\x00\x00\x00\x20ftypisom"), FormatMP4},
	} {
		f, err := NewFile("x", bytes.NewReader(c.in))
		if err != nil || f.Format() != c.want {
			t.Errorf("% x: %v %v", c.in[:8], f, err)
		}
	}
	for _, in := range [][]byte{nil, []byte("hello world"), randomBytes(1000, 9)} {
		if _, err := NewFile("x", bytes.NewReader(in)); !errors.Is(err, media.ErrBadInput) {
			t.Errorf("%q: %v", in[:min(len(in), 8)], err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	if _, err := OpenFile("testdata/nope.ts"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	f, err := OpenFile("testdata/clip.mp4", WithPacing(false))
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t)
	if err := f.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.count(videoTrackID) != 50 {
		t.Fatalf("%d video samples", r.count(videoTrackID))
	}
}
