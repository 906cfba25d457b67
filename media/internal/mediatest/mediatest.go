package mediatest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/fmp4"
)

// Options say what stream to encode. The zero value gets defaults.
type Options struct {
	Seconds int    // length (default 10)
	Audio   string // "opus" (default) or "aac"
	Width   int    // default 320 (height is 9/16 of it)
	FPS     int    // default 30
	GOP     int    // frames between keyframes (default 2 s)
	BFrames bool   // allow B-frames (main profile)
}

func (o *Options) defaults() {
	if o.Seconds == 0 {
		o.Seconds = 10
	}
	if o.Audio == "" {
		o.Audio = "opus"
	}
	if o.Width == 0 {
		o.Width = 320
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.GOP == 0 {
		o.GOP = 2 * o.FPS
	}
}

// Stream is an encoded broadcast: its init segment and its parts.
type Stream struct {
	Init  []byte
	Parts []media.Part // Wallclock is zero: the feeder stamps it
}

// Duration is the media time of all parts.
func (s *Stream) Duration() time.Duration {
	var d time.Duration
	for _, p := range s.Parts {
		d += p.Duration
	}
	return d
}

// FFmpegArgs returns the ffmpeg arguments that encode o into out.
func FFmpegArgs(o Options, out string) []string {
	o.defaults()
	h := o.Width * 9 / 16 &^ 1
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, h, o.FPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(o.Seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", fmt.Sprint(o.GOP), "-keyint_min", fmt.Sprint(o.GOP), "-sc_threshold", "0",
		"-b:v", "300k", "-threads", "1"}
	if o.BFrames {
		args = append(args, "-profile:v", "main", "-bf", "2")
	} else {
		args = append(args, "-profile:v", "baseline", "-tune", "zerolatency")
	}
	switch o.Audio {
	case "aac":
		args = append(args, "-c:a", "aac", "-b:a", "64k", "-ac", "2")
	default:
		args = append(args, "-c:a", "libopus", "-b:a", "48k", "-ac", "2")
	}
	return append(args, "-f", "mp4",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "200000",
		out)
}

var genMu sync.Mutex

// Generate encodes a stream with ffmpeg, cached across test binaries in the
// temporary directory. Without ffmpeg the test is skipped (failed under CI,
// which installs it).
func Generate(tb testing.TB, o Options) *Stream {
	tb.Helper()
	o.defaults()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		msg := "mediatest: ffmpeg not found (apt-get install ffmpeg)"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	sum := sha256.Sum256([]byte(strings.Join(FFmpegArgs(o, ""), " ")))
	dir := filepath.Join(os.TempDir(), "peerscope-mediatest")
	path := filepath.Join(dir, hex.EncodeToString(sum[:8])+".mp4")

	genMu.Lock()
	defer genMu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		tmp := fmt.Sprintf("%s.%d.tmp.mp4", path, os.Getpid())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffmpeg", FFmpegArgs(o, tmp)...).CombinedOutput()
		if err != nil {
			tb.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, path); err != nil {
			tb.Fatal(err)
		}
		if b, err = os.ReadFile(path); err != nil {
			tb.Fatal(err)
		}
	}
	s, err := Split(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Split cuts a fragmented MP4 file into its init segment (everything before
// the first moof) and its parts (each moof with the boxes up to the next).
func Split(file []byte) (*Stream, error) {
	var (
		s     Stream
		cur   []byte
		start = -1
	)
	for off := 0; off < len(file); {
		if len(file)-off < 8 {
			return nil, errors.New("mediatest: truncated box header")
		}
		size := int(binary.BigEndian.Uint32(file[off:]))
		typ := string(file[off+4 : off+8])
		switch size {
		case 0:
			size = len(file) - off
		case 1:
			if len(file)-off < 16 {
				return nil, errors.New("mediatest: truncated large box header")
			}
			size = int(binary.BigEndian.Uint64(file[off+8:]))
		}
		if size < 8 || size > len(file)-off {
			return nil, fmt.Errorf("mediatest: box %q of size %d at %d", typ, size, off)
		}
		if typ == "moof" {
			if start < 0 {
				s.Init = file[:off]
			} else {
				cur = file[start:off]
				s.Parts = append(s.Parts, media.Part{Payload: cur})
			}
			start = off
		}
		off += size
	}
	if start < 0 {
		return nil, errors.New("mediatest: no moof")
	}
	if last := file[start:]; len(last) > 0 {
		s.Parts = append(s.Parts, media.Part{Payload: last})
	}
	u, err := fmp4.NewUnpacker(s.Init)
	if err != nil {
		return nil, err
	}
	for i := range s.Parts {
		fr, err := u.Unpack(s.Parts[i].Payload, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("mediatest: part %d: %w", i, err)
		}
		s.Parts[i].Duration = fr.Duration
		s.Parts[i].Independent = fr.Independent
	}
	return &s, nil
}

// Chunks turns the stream into the chunks a broadcaster would emit: the init
// chunk (Seq 0), then one chunk per part, stamped from start on, and, with
// end set, an empty FlagEnd chunk after the last part.
func (s *Stream) Chunks(broadcast string, start time.Time, end bool) []*chunk.Chunk {
	cs := []*chunk.Chunk{{Broadcast: broadcast, Seq: 0, Wallclock: start.UnixNano(), Flags: chunk.FlagInit, Payload: s.Init}}
	wall := start
	for i, p := range s.Parts {
		c := &chunk.Chunk{Broadcast: broadcast, Seq: uint64(i), Wallclock: wall.UnixNano(), Duration: int64(p.Duration), Payload: p.Payload}
		if p.Independent {
			c.Flags |= chunk.FlagKeyframe
		}
		cs = append(cs, c)
		wall = wall.Add(p.Duration)
	}
	if end {
		cs = append(cs, &chunk.Chunk{Broadcast: broadcast, Seq: uint64(len(s.Parts)), Wallclock: wall.UnixNano(), Flags: chunk.FlagEnd})
	}
	return cs
}

// Feed pushes the stream's chunks in real time, as a live broadcaster would:
// the init, then each part once its media time has passed (its wallclock is
// when it was captured, i.e. its start), then an end chunk if end is set.
// The first lead parts go at once, as a node that joins late gets them. It
// returns when done or when ctx ends.
func (s *Stream) Feed(ctx context.Context, push func(*chunk.Chunk), lead int, end bool) {
	var leadDur time.Duration
	for _, p := range s.Parts[:min(lead, len(s.Parts))] {
		leadDur += p.Duration
	}
	base := time.Now().Add(-leadDur) // when the broadcast started
	var at time.Duration
	push(&chunk.Chunk{Seq: 0, Wallclock: base.UnixNano(), Flags: chunk.FlagInit, Payload: s.Init})
	for i, p := range s.Parts {
		// A part leaves the packager when its last sample is in.
		if !clock.SleepUntil(ctx, clock.System{}, base.Add(at+p.Duration)) {
			return
		}
		c := &chunk.Chunk{Seq: uint64(i), Wallclock: base.Add(at).UnixNano(), Duration: int64(p.Duration), Payload: p.Payload}
		if p.Independent {
			c.Flags |= chunk.FlagKeyframe
		}
		push(c)
		at += p.Duration
	}
	if end {
		push(&chunk.Chunk{Seq: uint64(len(s.Parts)), Wallclock: base.Add(at).UnixNano(), Flags: chunk.FlagEnd})
	}
}
