package api

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
)

// testJPEG encodes a w×h gradient at quality q.
func testJPEG(t testing.TB, w, h, q int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// thumbnailCases is the one table of stills: unit test, fuzz seeds.
func thumbnailCases(t testing.TB) []struct {
	name string
	b    []byte
	ok   bool
} {
	good := testJPEG(t, 320, 180, 70)
	return []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"320x180", good, true},
		{"1x1", testJPEG(t, 1, 1, 70), true},
		{"empty", nil, false},
		{"truncated header", good[:20], false},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"), false},
		{"too wide", testJPEG(t, 641, 2, 10), false},
		{"marker only", []byte{0xff, 0xd8, 0xff}, false},
		{"oversize", append(append([]byte{}, good...), make([]byte, MaxThumbnailBytes)...), false},
	}
}

func TestCheckThumbnail(t *testing.T) {
	for _, c := range thumbnailCases(t) {
		err := CheckThumbnail(c.b)
		if c.ok != (err == nil) {
			t.Errorf("%s: err %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v is not ErrBadRequest", c.name, err)
		}
	}
}

func TestWriteThumbnailSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/FuzzCheckThumbnail/seed-*")
	}
	for _, c := range thumbnailCases(t) {
		if len(c.b) > MaxThumbnailBytes {
			continue // the size check needs no seed of 32 KB
		}
		fuzzseed.Write(t, "FuzzCheckThumbnail", fuzzseed.Name(c.name), c.b)
	}
}

// FuzzCheckThumbnail: CheckThumbnail reads untrusted bytes with
// image/jpeg's header decoder; it refuses with ErrBadRequest or takes a
// JPEG whose header image/jpeg reads again within the limits, and never
// panics. Seeds are in testdata/fuzz/FuzzCheckThumbnail/.
func FuzzCheckThumbnail(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckThumbnail(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%v is not ErrBadRequest", err)
			}
			return
		}
		c, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || len(b) > MaxThumbnailBytes || c.Width > MaxThumbnailSide || c.Height > MaxThumbnailSide || c.Width < 1 || c.Height < 1 {
			t.Fatalf("taken: %d bytes, %dx%d, %v", len(b), c.Width, c.Height, err)
		}
	})
}
