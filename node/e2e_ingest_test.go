package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// broadcastPage is what tests/browser/broadcast.mjs prints.
type broadcastPage struct {
	States     []string `json:"states"`
	State      string   `json:"state"`
	Codec      string   `json:"codec"`
	FramesSent int      `json:"framesSent"`
	Error      string   `json:"error"`
	Failed     bool     `json:"failed"`
	Log        []string `json:"log"`
}

// TestE2EWHIPFromChromium goes live from the broadcaster node's own
// broadcaster page (over HTTPS, its self-signed certificate) in headless
// Chromium with a fake camera and microphone, and watches the result two
// hops down the tree: ffprobe decodes H.264 and Opus from that viewer's
// LL-HLS while the page is live, the title typed on the page reaches it,
// and the page's End ends the broadcast everywhere.
func TestE2EWHIPFromChromium(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	needTool(t, "ffprobe")
	log, _ := newLogs(t, slog.LevelInfo)
	root, err := node.New(t.Context(), node.Config{Slots: 1, Logger: log.With("node", "broadcaster")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "Waiting for the camera", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	page := b.URLs().BroadcasterPage
	if !strings.HasPrefix(page, "https://") || !strings.Contains(page, b.StreamKey()) {
		t.Fatalf("broadcaster page %q", page)
	}
	deep := chain(t, b.Link(), 2, log)[1]

	const title = "Fake camera, 2 hops"
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	pageDone := make(chan broadcastPage, 1)
	go func() {
		var res broadcastPage
		// Live for 20 s, then End: time for the checks below.
		out, err := browsertest.Run(ctx, t, "broadcast.mjs", "--url", page, "--seconds", "20", "--title", title)
		if err == nil {
			err = json.Unmarshal(out, &res)
		}
		if err != nil {
			res.Error, res.Failed = err.Error(), true
		}
		pageDone <- res
	}()

	waitFor(t, 30*time.Second, "the WHIP publisher to go live", func() bool { return b.Publishing() == "whip" })
	waitHLS(t, deep, 30*time.Second)
	streams := probeHLS(t, deep.URLs().HLS, 3)
	v, a := streams["h264"], streams["opus"]
	t.Logf("depth 2: H.264 %s %dx%d, %d frames decoded; Opus %s Hz, %d frames decoded", v.Profile, v.Width, v.Height, v.Frames, a.SampleRate, a.Frames)
	if v.Frames < 30 || v.Width == 0 {
		t.Errorf("H.264 at depth 2: %+v", v)
	}
	if a.Frames < 50 {
		t.Errorf("Opus at depth 2: %+v", a)
	}
	waitFor(t, 20*time.Second, "the page's title at depth 2", func() bool { return deep.Announcement().Title == title })

	res := <-pageDone
	t.Logf("page: states %v, codec %s, %d frames sent", res.States, res.Codec, res.FramesSent)
	if res.Failed || res.State != "ended" || !strings.EqualFold(res.Codec, "video/H264") {
		t.Fatalf("page: %+v", res)
	}
	for _, w := range []*node.Broadcast{b, deep} {
		select {
		case <-w.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: End did not end the broadcast", w.URLs().Player)
		}
	}
}

// TestE2ERTMPFromFFmpeg publishes a test pattern (H.264 + AAC) from ffmpeg
// over RTMP and watches it three hops down the tree: ffprobe decodes H.264
// and AAC from that viewer's LL-HLS, and ffmpeg's end ends the broadcast
// everywhere.
func TestE2ERTMPFromFFmpeg(t *testing.T) {
	e2e(t)
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	log, _ := newLogs(t, slog.LevelInfo)
	root := newNode(t, node.Config{Slots: 1, Logger: log.With("node", "broadcaster")})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "RTMP, 3 hops", RTMP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.URLs().RTMP, "rtmp://127.0.0.1:") || !strings.HasSuffix(b.URLs().RTMP, "/live/"+b.StreamKey()) {
		t.Fatalf("RTMP URL %q", b.URLs().RTMP)
	}
	deep := chain(t, b.Link(), 3, log)[2]

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	ffmpeg := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "20",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "30",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "flv", b.URLs().RTMP)
	ffmpeg.Stderr = &stderr
	if err := ffmpeg.Start(); err != nil {
		t.Fatal(err)
	}
	ffmpegDone := make(chan error, 1)
	go func() { ffmpegDone <- ffmpeg.Wait() }()

	waitFor(t, 30*time.Second, "the RTMP publisher to go live", func() bool { return b.Publishing() == "rtmp" })
	waitHLS(t, deep, 30*time.Second)
	streams := probeHLS(t, deep.URLs().HLS, 3)
	v, a := streams["h264"], streams["aac"]
	t.Logf("depth 3: H.264 %s %dx%d, %d frames decoded; AAC %s Hz, %d frames decoded", v.Profile, v.Width, v.Height, v.Frames, a.SampleRate, a.Frames)
	if v.Frames < 30 || v.Width != 320 || v.Height != 180 {
		t.Errorf("H.264 at depth 3: %+v", v)
	}
	if a.Frames < 50 || a.SampleRate != "44100" {
		t.Errorf("AAC at depth 3: %+v", a)
	}

	if err := <-ffmpegDone; err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.Bytes())
	}
	for _, w := range []*node.Broadcast{b, deep} {
		select {
		case <-w.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the encoder's end did not end the broadcast", w.URLs().Player)
		}
	}
}
