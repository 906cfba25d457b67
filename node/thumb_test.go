package node_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestStudioThumbnailRoute: the studio's PUT /broadcast/thumbnail takes a
// small JPEG, opened by the stream key, and the listing then names it; a
// PNG, a JPEG too big or too wide, another content type or a wrong key is
// refused with what is wrong, and the directory keeps the still it had.
func TestStudioThumbnailRoute(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: 200 * time.Millisecond})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "studio still", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	publishWHIP(t, b.URLs().WHIP, b.StreamKey()) // listed once video flows
	c := &http.Client{}
	defer c.CloseIdleConnections()
	url, key := n.HTTPURL()+"/broadcast/thumbnail", b.StreamKey()
	anyone := &api.Client{Base: svc.URL()}
	tagged := func(tag string) func() bool {
		return func() bool {
			l, err := anyone.Broadcast(t.Context(), b.ID())
			return err == nil && l.Thumbnail == tag
		}
	}
	waitFor(t, 30*time.Second, "the broadcast listed, without a still", tagged(""))

	jpegOf := func(w, h int) string {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	good := jpegOf(320, 180)
	if code, _, body := (goLiveCall{method: "PUT", url: url, key: key, contentType: "image/jpeg", body: good}.do(t, c)); code != http.StatusAccepted {
		t.Fatalf("PUT still: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the listing with its still", tagged(api.ThumbnailTag([]byte(good))))

	for _, tc := range []struct{ name, ct, body, say string }{
		{"png", "image/jpeg", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a JPEG"},
		{"oversize", "image/jpeg", good + strings.Repeat("\x00", api.MaxThumbnailBytes), "at most 32768"},
		{"too wide", "image/jpeg", jpegOf(1280, 8), "at most 640x640"},
		{"json", "application/json", `{"jpeg":""}`, "image/jpeg"},
	} {
		code, _, body := goLiveCall{method: "PUT", url: url, key: key, contentType: tc.ct, body: tc.body}.do(t, c)
		if (code != http.StatusBadRequest && code != http.StatusUnsupportedMediaType) || !strings.Contains(body, tc.say) {
			t.Errorf("%s: %d %s, want a refusal saying %q", tc.name, code, body, tc.say)
		}
	}
	if code, _, _ := (goLiveCall{method: "PUT", url: url, key: "nope", contentType: "image/jpeg", body: good}.do(t, c)); code != http.StatusUnauthorized {
		t.Errorf("a wrong key: %d", code)
	}
	// Renewals come and go; the still stays the one taken.
	first, err := anyone.Broadcast(t.Context(), b.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "two renewals", func() bool {
		l, err := anyone.Broadcast(t.Context(), b.ID())
		return err == nil && l.Version > first.Version+1
	})
	if !tagged(api.ThumbnailTag([]byte(good)))() {
		t.Error("the still changed after refusals")
	}
}

// TestKeyframeStill: a broadcast from a file (as from OBS or ffmpeg: no
// studio) gets its card's still from ffmpeg, when on PATH, out of a
// keyframe chunk and the init segment.
func TestKeyframeStill(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg on PATH: the card keeps its initials")
	}
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: 200 * time.Millisecond})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "from a file", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	anyone := &api.Client{Base: svc.URL()}
	waitFor(t, 30*time.Second, "the listing with a still from a keyframe", func() bool {
		l, err := anyone.Broadcast(t.Context(), b.ID())
		return err == nil && l.Thumbnail != ""
	})
	resp, err := http.Get(svc.URL() + "/api/v1/broadcasts/" + b.ID() + "/thumbnail")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	img, err := jpeg.DecodeConfig(resp.Body)
	if err != nil || img.Width < 1 || img.Width > 320 {
		t.Fatalf("the still: %+v %v", img, err)
	}
	t.Logf("a %dx%d still", img.Width, img.Height)
	b.Close() // and ffmpeg, if one runs, with it
	stacks := make([]byte, 4<<20)
	if st := string(stacks[:runtime.Stack(stacks, true)]); strings.Contains(st, "keyframeStiller") || strings.Contains(st, "os/exec") {
		t.Errorf("the stiller outlived its broadcast:\n%s", st)
	}
}
