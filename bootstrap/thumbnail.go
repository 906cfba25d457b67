package bootstrap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// thumbnailInterval is the least time between two stills of one broadcast
// (the studio sends one every 30 s): with live listings capped per account
// and per network, it bounds what stills cost the bootstrap.
const thumbnailInterval = 10 * time.Second

// maxThumbnailBody bounds the signed JSON that carries a still (base64
// makes 4 bytes of 3).
const maxThumbnailBody = api.MaxThumbnailBytes*4/3 + 1024

// handlePutThumbnail takes a still of a live public broadcast from its
// broadcaster: a JPEG that api.CheckThumbnail takes, at most one every
// thumbnailInterval. The bootstrap never fetches a still from anywhere:
// the broadcaster's node pushes it, signed like the listing.
func (s *Server) handlePutThumbnail(w http.ResponseWriter, r *http.Request) {
	id, _, body, n, ok := s.byBroadcasterMax(w, r, "send the thumbnail of", maxThumbnailBody)
	if !ok {
		return
	}
	if err := s.store.saveNonce(r.Context(), n); err != nil {
		s.fail(w, r, err)
		return
	}
	var t api.Thumbnail
	if err := decodeStrict(r, body, &t); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := api.CheckThumbnail(t.JPEG); err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.store.entry(r.Context(), id)
	switch {
	case err != nil:
	case !b.Live():
		err = fmt.Errorf("%w: the broadcast has ended", ErrStale)
	case b.Private:
		err = fmt.Errorf("%w: a private broadcast shows no still in the public directory", ErrForbidden)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tag := api.ThumbnailTag(t.JPEG)
	if err := s.store.setThumbnail(r.Context(), id, tag, t.JPEG, s.cfg.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.lists.invalidate()
	b.Thumbnail = tag
	s.raise(r.Context(), Event{Kind: EventUpdate, Listing: &b.Listing})
	writeJSON(w, http.StatusOK, api.ListingResponse{Listing: &b.Listing})
}

// handleGetThumbnail serves a public broadcast's still. Its URL carries the
// still's tag (?v=), so it may be cached for long.
func (s *Server) handleGetThumbnail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := api.BroadcasterOf(id); err != nil {
		s.fail(w, r, err)
		return
	}
	jpeg, tag, err := s.store.thumbnail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("ETag", `"`+tag+`"`)
	if r.URL.Query().Get("v") == tag {
		h.Set("Cache-Control", "public, max-age=86400, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.Write(jpeg)
}

// setThumbnail stores a broadcast's still, unless one came less than
// thumbnailInterval ago.
func (s *Store) setThumbnail(ctx context.Context, id, tag string, jpeg []byte, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE broadcasts SET thumb = ?, thumb_jpeg = ?, thumb_at = ? WHERE id = ? AND thumb_at <= ?`,
		tag, jpeg, now.UnixNano(), id, now.Add(-thumbnailInterval).UnixNano())
	if err != nil {
		return fmt.Errorf("bootstrap: store thumbnail: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: at most one thumbnail every %s", ErrRateLimited, thumbnailInterval)
	}
	return nil
}

// thumbnail returns a public broadcast's still and its tag.
func (s *Store) thumbnail(ctx context.Context, id string) ([]byte, string, error) {
	var jpeg []byte
	var tag string
	err := s.r.QueryRowContext(ctx, `SELECT thumb_jpeg, thumb FROM broadcasts WHERE id = ? AND private = 0 AND thumb != ''`, id).Scan(&jpeg, &tag)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("%w: no thumbnail of %q", ErrNotFound, clip(id, 80))
	}
	if err != nil {
		return nil, "", fmt.Errorf("bootstrap: thumbnail: %w", err)
	}
	return jpeg, tag, nil
}
