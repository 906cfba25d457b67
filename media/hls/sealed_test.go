package hls

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

// A private broadcast's parts stay sealed in the window and are opened
// only when a player takes them: each request opens its part, a segment
// opens its parts, and what is served is the plaintext.
func TestSealedParts(t *testing.T) {
	seal := mediatest.NewSealing(t)
	s := newServer(t, Config{Opener: seal})
	mustPush(t, s, seal.Seal(t, initChunk(0, "init-A")))
	plain := map[uint64][]byte{}
	for seq := range uint64(12) {
		c := mkPart(seq)
		c.Payload = bytes.Repeat([]byte(fmt.Sprintf("part%d;", seq)), 1000)
		plain[seq] = c.Payload
		mustPush(t, s, seal.Seal(t, c))
	}
	if n := seal.Opened.Load(); n != 1 {
		t.Fatalf("%d opens before any request, want 1 (the init segment)", n)
	}
	want := 0
	for _, p := range plain {
		want += len(p)
	}
	if got := s.Info().Bytes; got != want {
		t.Errorf("Info().Bytes = %d, want the plaintext's %d", got, want)
	}
	if w := get(t, s, "/init/0.mp4"); w.Body.String() != "init-A" {
		t.Fatalf("init: %d %q", w.Code, w.Body.String())
	}
	for _, seq := range []uint64{3, 11, 3} {
		w := get(t, s, fmt.Sprintf("/part/%d.m4s", seq))
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), plain[seq]) {
			t.Fatalf("part %d: %d, %d bytes, want the %d of its plaintext", seq, w.Code, w.Body.Len(), len(plain[seq]))
		}
		if cl := w.Header().Get("Content-Length"); cl != fmt.Sprint(len(plain[seq])) {
			t.Fatalf("part %d: Content-Length %s", seq, cl)
		}
	}
	if n := seal.Opened.Load(); n != 4 {
		t.Fatalf("%d opens after three part requests, want 4", n)
	}
	// Segment 0 is parts 0–9 (the keyframe at 10 starts segment 1).
	w := get(t, s, "/seg/0.m4s")
	var seg []byte
	for seq := range uint64(10) {
		seg = append(seg, plain[seq]...)
	}
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), seg) || w.Header().Get("Content-Length") != fmt.Sprint(len(seg)) {
		t.Fatalf("segment 0: %d, %d bytes (Content-Length %s), want %d", w.Code, w.Body.Len(), w.Header().Get("Content-Length"), len(seg))
	}
}

// A sealed part that does not open is a clear error for its request; the
// server goes on serving the others. A sealed chunk without an Opener is
// refused at Push.
func TestSealedPartThatDoesNotOpen(t *testing.T) {
	seal := mediatest.NewSealing(t)
	s := newServer(t, Config{Opener: seal})
	mustPush(t, s, seal.Seal(t, initChunk(0, "init-A")))
	for seq := range uint64(3) {
		c := seal.Seal(t, mkPart(seq))
		if seq == 1 {
			c.Payload[0] ^= 1 // sealed wrong by the broadcaster: signed, but does not open
		}
		mustPush(t, s, c)
	}
	w := get(t, s, "/part/1.m4s")
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "part 1 does not open") {
		t.Fatalf("part 1: %d %q", w.Code, w.Body.String())
	}
	if w := get(t, s, "/part/2.m4s"); w.Code != http.StatusOK || w.Body.String() != "part2;" {
		t.Fatalf("part 2 after the bad one: %d %q", w.Code, w.Body.String())
	}

	public := newServer(t, Config{})
	err := public.Push(seal.Seal(t, mkPart(7)))
	if !errors.Is(err, media.ErrSealed) {
		t.Fatalf("a sealed chunk without an Opener: %v", err)
	}
	if err := public.Push(mkPart(0)); err != nil {
		t.Fatalf("a public chunk after: %v", err)
	}
}
