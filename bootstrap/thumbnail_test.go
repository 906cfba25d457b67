package bootstrap_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

func stillJPEG(t *testing.T, w, h int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestThumbnail: a broadcaster's node sends a still of its live broadcast;
// the listing names it by tag and the bootstrap serves it. An oversize
// still, one that is not a JPEG, one too wide, one too soon after the last
// or one from another key is refused with a clear error and stores
// nothing; a listing that never had one (an older node's) has no
// thumbnail field.
func TestThumbnail(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		t0 := e.clock.Now()
		a1 := alice.broadcastID("thumb1")
		if _, err := alice.c.Announce(ctx, a1, announcement(a1, "Harbour at dusk", t0, 1)); err != nil {
			t.Fatal(err)
		}
		// An older node's listing: no field at all.
		raw := e.get(t, "/api/v1/broadcasts/"+a1)
		if strings.Contains(string(raw), `"thumbnail"`) {
			t.Fatalf("a listing without a still: %s", raw)
		}

		still := stillJPEG(t, 320, 180, color.RGBA{200, 40, 40, 255})
		if err := alice.c.PutThumbnail(ctx, a1, still); err != nil {
			t.Fatal(err)
		}
		got, err := bob.c.Broadcast(ctx, a1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Thumbnail != api.ThumbnailTag(still) {
			t.Fatalf("listed thumbnail %q, want %q", got.Thumbnail, api.ThumbnailTag(still))
		}
		live, _ := bob.c.List(ctx, api.Query{})
		if len(live) != 1 || live[0].Thumbnail != got.Thumbnail {
			t.Fatalf("directory: %+v", live)
		}
		served := e.get(t, "/api/v1/broadcasts/"+a1+"/thumbnail?v="+got.Thumbnail)
		if !bytes.Equal(served, still) {
			t.Fatalf("served %d bytes, sent %d", len(served), len(still))
		}

		e.clock.Advance(time.Minute)
		bad := []struct {
			name   string
			jpeg   []byte
			status int
			says   string
		}{
			{"oversize", append(append([]byte{}, still...), make([]byte, api.MaxThumbnailBytes)...), http.StatusRequestEntityTooLarge, ""},
			{"just over the cap", append(append([]byte{}, still...), make([]byte, api.MaxThumbnailBytes-len(still)+1)...), http.StatusBadRequest, "at most 32768"},
			{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), http.StatusBadRequest, "not a JPEG"},
			{"truncated", still[:30], http.StatusBadRequest, "not a readable JPEG"},
			{"too wide", stillJPEG(t, 700, 10, color.RGBA{}), http.StatusBadRequest, "at most 640x640"},
			{"empty", nil, http.StatusBadRequest, "empty"},
		}
		for _, c := range bad {
			err := alice.c.PutThumbnail(ctx, a1, c.jpeg)
			mustStatus(t, err, c.status, "")
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s: %v, want it to say %q", c.name, err, c.says)
			}
		}
		if err := bob.c.PutThumbnail(ctx, a1, stillJPEG(t, 32, 32, color.RGBA{})); err == nil {
			t.Fatal("bob sent alice's still")
		} else {
			mustStatus(t, err, http.StatusForbidden, "")
		}
		if got, _ := bob.c.Broadcast(ctx, a1); got.Thumbnail != api.ThumbnailTag(still) {
			t.Fatalf("after refusals: %q", got.Thumbnail)
		}
		if served := e.get(t, "/api/v1/broadcasts/"+a1+"/thumbnail"); !bytes.Equal(served, still) {
			t.Fatal("after refusals the still changed")
		}

		// A new still replaces the old; one right after it is refused.
		next := stillJPEG(t, 320, 180, color.RGBA{40, 40, 200, 255})
		if err := alice.c.PutThumbnail(ctx, a1, next); err != nil {
			t.Fatal(err)
		}
		err = alice.c.PutThumbnail(ctx, a1, still)
		mustStatus(t, err, http.StatusTooManyRequests, "")
		if got, _ := bob.c.Broadcast(ctx, a1); got.Thumbnail != api.ThumbnailTag(next) {
			t.Fatalf("after the second still: %q", got.Thumbnail)
		}

		// No still for what is not listed, nor after the end.
		if resp, err := http.Get(e.url + "/api/v1/broadcasts/" + alice.broadcastID("none") + "/thumbnail"); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("no still: %v %v", resp.StatusCode, err)
		}
		ended := announcement(a1, "Harbour at dusk", t0, 2)
		ended.Ended = e.clock.Now()
		if _, err := alice.c.Announce(ctx, a1, ended); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		mustStatus(t, alice.c.PutThumbnail(ctx, a1, still), http.StatusConflict, "")
	})
}

func (e *env) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}
