package sample_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
)

// package runs the clip through the MPEG-TS source and the packager.
func pack(t *testing.T) (init []byte, codecs string, parts []media.Part) {
	t.Helper()
	p, err := cmaf.New(cmaf.Config{}, func(o cmaf.Output) error {
		if o.Init != nil {
			if init != nil {
				t.Errorf("a second init segment")
			}
			init, codecs = o.Init, o.Codecs
		} else {
			parts = append(parts, o.Part)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest.NewTS(bytes.NewReader(sample.TS())).Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := p.Stats().DroppedVideo.Load() + p.Stats().Rebases.Load(); n != 0 {
		t.Errorf("%d samples dropped or re-based", n)
	}
	return init, codecs, parts
}

// The clip packs into 50 parts of 200 ms, 10 segments of one second, with
// every picture.
func TestClipPackages(t *testing.T) {
	if n := len(sample.TS()); n > 1<<20 {
		t.Errorf("the clip weighs %d bytes", n)
	}
	init, codecs, parts := pack(t)
	if codecs != "avc1.42c01e,opus" {
		t.Errorf("codecs %q", codecs)
	}
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil || len(in.Tracks) != 2 {
		t.Fatalf("init: %v, %d tracks", err, len(in.Tracks))
	}
	if len(parts) != sample.Duration*5 {
		t.Errorf("%d parts", len(parts))
	}
	video, audio := 0, 0
	var total time.Duration
	for i, p := range parts {
		if p.Independent != (i%5 == 0) {
			t.Errorf("part %d independent %v", i, p.Independent)
		}
		var ps fmp4.Parts
		if err := ps.Unmarshal(p.Payload); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		for _, tr := range ps[0].Tracks {
			if tr.ID == 1 {
				video += len(tr.Samples)
			} else {
				audio += len(tr.Samples)
			}
		}
		total += p.Duration
	}
	// The first Opus frame starts 6.5 ms before the first picture: the
	// stream starts at the picture, without it.
	if video != sample.VideoFrames || audio != sample.AudioFrames-1 {
		t.Errorf("%d video and %d audio samples", video, audio)
	}
	if total < 9900*time.Millisecond || total > 10100*time.Millisecond {
		t.Errorf("parts add up to %v", total)
	}
}

// ffmpeg decodes every picture and sound of the packaged clip without a
// complaint.
func TestClipDecodes(t *testing.T) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed (apt-get install -y ffmpeg)")
	}
	init, _, parts := pack(t)
	file := append([]byte(nil), init...)
	for _, p := range parts {
		file = append(file, p.Payload...)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-hide_banner", "-v", "error", "-threads", "1", "-i", path,
		"-map", "0:v", "-map", "0:a", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(probe))
	if len(got) != 2 || got[0] != "h264,640,360,300" || !strings.HasPrefix(got[1], "opus,") {
		t.Fatalf("ffprobe: %q", got)
	}
}
