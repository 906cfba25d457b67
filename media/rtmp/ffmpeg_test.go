package rtmp

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

// teeSink hands everything to two sinks; the first error wins.
type teeSink struct{ a, b media.Sink }

func (t teeSink) Tracks(tr []media.Track) error {
	if err := t.a.Tracks(tr); err != nil {
		return err
	}
	return t.b.Tracks(tr)
}

func (t teeSink) Sample(s media.Sample) error {
	if err := t.a.Sample(s); err != nil {
		return err
	}
	return t.b.Sample(s)
}

// ffmpegArgs publishes a test pattern and a sine as H.264 (with B-frames,
// a keyframe a second) and AAC, paced in real time, for d.
func ffmpegArgs(url string, d time.Duration) []string {
	return []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", d.String(),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "300k",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "flv", url}
}

func needFFmpeg(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the real-encoder test")
	}
	path, err := lookFFmpeg()
	if err != nil {
		t.Skip("ffmpeg not installed (Debian: apt-get install ffmpeg); skipping the real-encoder test")
	}
	return path
}

// TestFFmpeg publishes with a real encoder: the tracks arrive, DTS never
// goes back, the B-frames show as PTS ahead of DTS, there is a keyframe
// every GOP (30 frames, one second), and the end of the stream is a clean
// one. A wrong key is refused and ffmpeg says so.
func TestFFmpeg(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	// The colleague's packager sees the same stream: what RTMP yields must
	// be what it takes.
	var parts, independent int
	pkg, err := cmaf.New(cmaf.Config{}, func(o cmaf.Output) error {
		if o.Init == nil {
			parts++
			if o.Part.Independent {
				independent++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil)
	h.mu.Lock()
	h.wrap = func(s *mediatest.Sink) media.Sink { return teeSink{s, pkg} }
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, ffmpeg, ffmpegArgs(h.url("wrong-key"), time.Second)...).CombinedOutput()
	if err == nil {
		t.Fatal("ffmpeg published with a wrong key")
	}
	t.Logf("ffmpeg with a wrong key: %v: %s", err, out)

	start := time.Now()
	out, err = exec.CommandContext(ctx, ffmpeg, ffmpegArgs(h.url(h.key), 4*time.Second)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	if err := <-h.ended; err != nil {
		t.Errorf("ffmpeg's end of stream gave Unpublish(%v), want nil", err)
	}
	tracks, samples := h.sink(0).Snapshot()
	if len(tracks) != 2 || tracks[0].Codec != media.H264 || tracks[1].Codec != media.AAC || tracks[0].SPS == nil {
		t.Fatalf("tracks %+v", tracks)
	}
	checkSamples(t, tracks, samples)
	if err := pkg.Flush(); err != nil {
		t.Errorf("packager flush: %v", err)
	}
	t.Logf("the CMAF packager cut %d parts, %d of them independent", parts, independent)
	if parts < 15 || independent < 4 {
		t.Errorf("the CMAF packager cut %d parts (%d independent) from 4 s", parts, independent)
	}

	var video, audio, reordered int
	var keyAt []time.Duration
	var lastVideoDTS, lastPTS time.Duration
	for _, s := range samples {
		if s.Track != 1 {
			audio++
			continue
		}
		video++
		lastVideoDTS = s.DTS
		if s.PTS < lastPTS {
			reordered++ // shown before the frame decoded ahead of it: a B-frame
		}
		lastPTS = s.PTS
		if s.Keyframe {
			keyAt = append(keyAt, s.DTS)
		}
		if s.Wallclock.Before(start) || s.Wallclock.After(time.Now()) {
			t.Fatalf("wallclock %v outside the run", s.Wallclock)
		}
	}
	t.Logf("video %d samples (%d B-frames shown before a frame decoded earlier), audio %d, keyframes at %v, last video DTS %v", video, reordered, audio, keyAt, lastVideoDTS)
	if video < 110 || audio < 160 {
		t.Errorf("only %d video and %d audio samples for 4 s", video, audio)
	}
	if reordered == 0 {
		t.Error("PTS never goes back in decode order: B-frames lost their composition time")
	}
	if len(keyAt) < 4 {
		t.Fatalf("keyframes at %v, want one a second", keyAt)
	}
	for i := 1; i < len(keyAt); i++ {
		if gap := keyAt[i] - keyAt[i-1]; gap < 990*time.Millisecond || gap > 1010*time.Millisecond {
			t.Errorf("keyframes %v apart, want 1 s (GOP 30 at 30 fps)", gap)
		}
	}
	// Paced by -re, the wallclock advances with the media.
	first, last := samples[0], samples[len(samples)-1]
	if span := last.Wallclock.Sub(first.Wallclock); span < 3*time.Second || span > 5*time.Second {
		t.Errorf("wallclock spans %v over 4 s of media", span)
	}
}

func lookFFmpeg() (string, error) { return exec.LookPath("ffmpeg") }

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
