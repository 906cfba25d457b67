package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/jpeg"
)

// Thumbnail is what a broadcaster's node PUTs to
// /api/v1/broadcasts/{id}/thumbnail (signed, like the listing): a still of
// the live broadcast, which the directory shows on its card. It travels
// on its own route, not in ListingUpdate, so a bootstrap older than
// thumbnails still takes every listing (it answers the route 404), and
// the listing, renewed every few seconds, stays small.
type Thumbnail struct {
	JPEG []byte `json:"jpeg"` // base64 in JSON
}

// Limits of a thumbnail: a 320-pixel-wide still at quality 0.7 is 10 to
// 25 KB.
const (
	MaxThumbnailBytes = 32 << 10
	MaxThumbnailSide  = 640 // pixels, either side
)

// CheckThumbnail refuses (with ErrBadRequest) what is not a small
// baseline or progressive JPEG: too big, not starting with the JPEG
// marker, a header image/jpeg cannot read, or sides out of range. It reads
// the header only (DecodeConfig), not the pixels.
func CheckThumbnail(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("%w: thumbnail: empty", ErrBadRequest)
	case len(b) > MaxThumbnailBytes:
		return fmt.Errorf("%w: thumbnail: %d bytes, at most %d", ErrBadRequest, len(b), MaxThumbnailBytes)
	case !bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return fmt.Errorf("%w: thumbnail: not a JPEG", ErrBadRequest)
	}
	c, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: thumbnail: not a readable JPEG: %w", ErrBadRequest, err)
	}
	if c.Width < 1 || c.Height < 1 || c.Width > MaxThumbnailSide || c.Height > MaxThumbnailSide {
		return fmt.Errorf("%w: thumbnail: %dx%d pixels, at most %dx%d", ErrBadRequest, c.Width, c.Height, MaxThumbnailSide, MaxThumbnailSide)
	}
	return nil
}

// ThumbnailTag names a thumbnail's content (the listing's "thumbnail"
// field): pages fetch …/{id}/thumbnail?v=<tag>, so a new still is a new
// URL and an old one may be cached.
func ThumbnailTag(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
