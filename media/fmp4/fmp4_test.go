package fmp4_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/fmp4"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

// The fixtures were made by mediatest.FFmpegArgs (160x90, 15 fps, a
// keyframe every second, ~200 ms fragments): opus and aac for 2 s, and 1 s
// of main profile with B-frames.
var cases = []struct {
	file    string
	audio   media.Codec
	bframes bool
}{
	{"opus.mp4", media.Opus, false},
	{"aac.mp4", media.AAC, false},
	{"bframes.mp4", media.Opus, true},
}

func load(tb testing.TB, file string) *mediatest.Stream {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := mediatest.Split(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestUnpack(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			s := load(t, tc.file)
			u, err := fmp4.NewUnpacker(s.Init)
			if err != nil {
				t.Fatal(err)
			}
			tracks := u.Tracks()
			if len(tracks) != 2 || tracks[0].Codec != media.H264 || tracks[1].Codec != tc.audio {
				t.Fatalf("tracks = %+v", tracks)
			}
			if len(tracks[0].SPS) == 0 || len(tracks[0].PPS) == 0 {
				t.Fatal("no SPS/PPS")
			}
			if tc.audio == media.AAC && len(tracks[1].AudioConfig) == 0 {
				t.Fatal("no AudioSpecificConfig")
			}
			if tracks[1].ChannelCount != 2 {
				t.Fatalf("channels = %d", tracks[1].ChannelCount)
			}

			wall := time.Unix(1700000000, 0)
			next := map[int]time.Duration{} // per track: where the next sample must start
			var frames, keyframes int
			var total time.Duration
			for i, p := range s.Parts {
				fr, err := u.Unpack(p.Payload, wall)
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				if i == 0 && !fr.Independent {
					t.Fatal("first part is not independent")
				}
				if fr.Duration <= 0 || fr.Duration > 500*time.Millisecond {
					t.Fatalf("part %d: duration %v", i, fr.Duration)
				}
				total += fr.Duration
				var last time.Duration
				for j, sm := range fr.Samples {
					if j > 0 && sm.DTS < last {
						t.Fatalf("part %d: samples not in decode order", i)
					}
					last = sm.DTS
					if sm.Wallclock.Sub(wall) != sm.DTS-fr.Start {
						t.Fatalf("part %d: wallclock %v for DTS %v (start %v)", i, sm.Wallclock, sm.DTS, fr.Start)
					}
					if sm.Track != 1 {
						if len(sm.Data) == 0 || !sm.Keyframe {
							t.Fatalf("part %d: bad audio sample %+v", i, sm)
						}
						continue
					}
					frames++
					if len(sm.NALUs) == 0 {
						t.Fatalf("part %d: video sample without NALUs", i)
					}
					if sm.Keyframe {
						keyframes++
						if j == 0 && !fr.Independent {
							t.Fatalf("part %d starts with a keyframe but is not independent", i)
						}
					}
					if tc.bframes {
						if sm.PTS < sm.DTS {
							t.Fatalf("part %d: PTS %v < DTS %v", i, sm.PTS, sm.DTS)
						}
					} else if sm.PTS != sm.DTS {
						t.Fatalf("part %d: PTS %v != DTS %v without B-frames", i, sm.PTS, sm.DTS)
					}
				}
				// Each track continues where it stopped: no gap, no overlap.
				for _, sm := range fr.Samples {
					if want, ok := next[sm.Track]; ok && sm.DTS != want && sm.DTS < want {
						t.Fatalf("part %d: track %d goes back to %v from %v", i, sm.Track, sm.DTS, want)
					}
					next[sm.Track] = sm.DTS + 1
				}
				wall = wall.Add(fr.Duration)
			}
			secs := map[string]int{"opus.mp4": 2, "aac.mp4": 2, "bframes.mp4": 1}[tc.file]
			if frames < 15*secs-1 || keyframes != secs {
				t.Fatalf("%d frames, %d keyframes", frames, keyframes)
			}
			if d := total - time.Duration(secs)*time.Second; d < -150*time.Millisecond || d > 150*time.Millisecond {
				t.Fatalf("total video duration %v", total)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	s := load(t, "opus.mp4")
	u, err := fmp4.NewUnpacker(s.Init)
	if err != nil {
		t.Fatal(err)
	}
	part := s.Parts[0].Payload
	for name, b := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not an mp4 box at all"),
		"truncated": part[:len(part)/2],
		"init":      s.Init,
	} {
		if _, err := u.Unpack(b, time.Time{}); !errors.Is(err, media.ErrBadInput) {
			t.Errorf("Unpack(%s) = %v, want ErrBadInput", name, err)
		}
		if name == "init" {
			continue
		}
		if _, err := fmp4.ParseInit(b); !errors.Is(err, media.ErrBadInput) {
			t.Errorf("ParseInit(%s) = %v, want ErrBadInput", name, err)
		}
	}
	if _, err := fmp4.ParseInit(part); !errors.Is(err, media.ErrBadInput) {
		t.Errorf("ParseInit(part) = %v, want ErrBadInput", err)
	}
}

// FuzzUnpack feeds arbitrary init segments and parts: nothing may panic, and
// every error must say the input was bad.
func FuzzUnpack(f *testing.F) {
	for _, tc := range cases {
		s := load(f, tc.file)
		for _, p := range s.Parts[:2] {
			f.Add(s.Init, p.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, init, part []byte) {
		u, err := fmp4.NewUnpacker(init)
		if err != nil {
			if !errors.Is(err, media.ErrBadInput) && !errors.Is(err, media.ErrUnsupportedCodec) {
				t.Fatalf("NewUnpacker: %v", err)
			}
			return
		}
		fr, err := u.Unpack(part, time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, media.ErrBadInput) {
				t.Fatalf("Unpack: %v", err)
			}
			return
		}
		if len(fr.Samples) == 0 {
			t.Fatal("no error and no sample")
		}
	})
}

func BenchmarkUnpack(b *testing.B) {
	s := load(b, "opus.mp4")
	u, err := fmp4.NewUnpacker(s.Init)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for _, p := range s.Parts {
		n += len(p.Payload)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range s.Parts {
			if _, err := u.Unpack(p.Payload, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
