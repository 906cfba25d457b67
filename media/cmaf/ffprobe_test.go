package cmaf

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ffprobe reads an init segment followed by parts as one fragmented MP4.
type probe struct {
	Streams []struct {
		CodecName     string `json:"codec_name"`
		CodecType     string `json:"codec_type"`
		Width         int    `json:"width"`
		SampleRate    string `json:"sample_rate"`
		NbReadPackets string `json:"nb_read_packets"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file []byte) probe {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not installed (apt-get install -y ffmpeg)")
	}
	path := filepath.Join(t.TempDir(), "stream.mp4")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", "error", "-count_packets", "-show_streams", "-show_format", "-of", "json", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
	}
	// The decoders and parsers complain about the synthetic payloads while
	// probing (they are not real pictures or sound); the MP4 demuxer must
	// not. media/sample's test decodes a real clip without a complaint.
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && (strings.Contains(line, "mov,mp4") || !strings.HasPrefix(line, "[")) {
			t.Errorf("ffprobe complains: %s", line)
		}
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFFprobe checks that ffprobe reads the packager's output, init and
// parts concatenated, as an MP4 with H.264 and audio and every sample.
func TestFFprobe(t *testing.T) {
	for _, name := range []string{"h264 opus 30fps", "h264 aac b-frames 25fps", "sps change makes a new init"} {
		t.Run(name, func(t *testing.T) {
			var c packCase
			for _, c = range cases {
				if c.name == name {
					break
				}
			}
			r := run(c.cfg, c.ops)
			if r.err != nil {
				t.Fatal(r.err)
			}
			var file []byte
			file = append(file, r.inits[0].Init...) // a player would switch init; ffprobe reads one
			for _, p := range r.parts {
				file = append(file, p.Payload...)
			}
			want := expected(c.ops)
			p := ffprobe(t, file)
			if len(p.Streams) != 2 {
				t.Fatalf("%d streams", len(p.Streams))
			}
			for _, s := range p.Streams {
				id, codec := audioID, map[bool]string{true: "aac", false: "opus"}[name == "h264 aac b-frames 25fps"]
				if s.CodecType == "video" {
					id, codec = videoID, "h264"
				}
				if s.CodecName != codec {
					t.Errorf("%s stream is %q, want %q", s.CodecType, s.CodecName, codec)
				}
				if n, _ := strconv.Atoi(s.NbReadPackets); n != len(want[id]) {
					t.Errorf("%s: ffprobe read %d packets, want %d", s.CodecType, n, len(want[id]))
				}
			}
			t.Logf("duration %s, %+v", p.Format.Duration, p.Streams)
		})
	}
}
