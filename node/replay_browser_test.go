package node_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
)

// TestReplayPage plays a replay in headless Chromium (a 30 s broadcast,
// paced twice as fast as real time): the page takes the
// VOD, plays from the start, seeks to 20 s and plays on from there, and
// shows each comment once the playhead passes the moment it was written.
// Then at 390x844, 844x390 (a phone turned), 1024x768 and 768x1024: no
// sideways scroll, the whole picture on screen, no comment over it; no
// console error.
func TestReplayPage(t *testing.T) {
	e2e(t)
	browsertest.Need(t)
	log, _ := newLogs(t, slog.LevelInfo)
	root := newNode(t, node.Config{Slots: 1, Logger: log.With("name", "broadcaster")})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "replay page", Source: gated{gate, clipFor(t, 30*time.Second, 2)}})
	if err != nil {
		t.Fatal(err)
	}
	close(gate)
	waitFor(t, 30*time.Second, "the broadcast under way", func() bool { return received(t, b) > 5 })
	// The capture time of the first frame, from the live playlist: the
	// comments are placed 3 s and 12 s into the stream.
	pl := string(get(t, b.URLs().HLS))
	i := strings.Index(pl, "#EXT-X-PROGRAM-DATE-TIME:")
	if i < 0 {
		t.Fatalf("no PROGRAM-DATE-TIME in\n%s", pl)
	}
	first, err := time.Parse("2006-01-02T15:04:05.000Z", strings.TrimSpace(strings.SplitN(pl[i+25:], "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string
		at   time.Duration
	}{{"first!", 3 * time.Second}, {"twelve seconds in", 12 * time.Second}} {
		// A comment is never placed after its sending (chat clamps it),
		// and this broadcast plays twice as fast as real time: wait until
		// the moment has come on the wall clock.
		waitFor(t, 30*time.Second, "the chat to take a comment", func() bool {
			if time.Now().Before(first.Add(c.at)) {
				return false
			}
			code, _ := postChat(t, b.URLs().Player+"chat/comment", "", map[string]any{"text": c.text, "at": first.Add(c.at).UnixMilli()})
			return code == http.StatusOK
		})
	}
	select {
	case <-b.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the broadcast did not end")
	}
	viewer := newNode(t, node.Config{Slots: node.NoRelay, Logger: log.With("name", "replay-viewer")})
	r, err := viewer.Replay(t.Context(), link.Link{Broadcast: b.ID(), Peers: []peer.AddrInfo{{ID: root.ID(), Addrs: root.Host().Addrs()}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	args := []string{"--url", r.PlayerURL(), "--seconds", "4", "--seek", "20"}
	if dir := os.Getenv("PEERSCOPE_SCREENSHOTS"); dir != "" {
		args = append(args, "--screenshot", dir+"/replay.png")
	}
	out, err := browsertest.Run(ctx, t, "replay.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	type moment struct {
		From, To, Advanced, Duration float64
		Stalls, Shown, Due, Comments int
		Mode                         string
		Controls                     bool
	}
	var p struct {
		Error         string
		Mode          string
		Before, After moment
		Errors, Log   []string
		Console       []string
		Seeks         int
		Looks         []struct {
			Size           string
			Sideways       bool
			Comments       int
			Shown, Covered float64
		}
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("replay.mjs printed %q: %v", out, err)
	}
	t.Logf("replay page: before the seek %.1f → %.1f s (%d comments shown of %d), after seeking to 20 s %.1f → %.1f s (%d shown), duration %.1f s, stalls %d/%d",
		p.Before.From, p.Before.To, p.Before.Shown, p.Before.Comments, p.After.From, p.After.To, p.After.Shown, p.Before.Duration, p.Before.Stalls, p.After.Stalls)
	logs := strings.Join(p.Log, "\n")
	switch {
	case p.Error != "":
		t.Fatalf("replay.mjs: %s\n%s", p.Error, logs)
	case p.Mode != "vod" || !p.Before.Controls:
		t.Fatalf("the page played in mode %q (controls %v)", p.Mode, p.Before.Controls)
	case p.Before.Duration < 29 || p.Before.Duration > 31:
		t.Fatalf("the page read a replay of %.1f s", p.Before.Duration)
	case p.Before.Advanced < 2 || p.After.Advanced < 2 || p.Before.Stalls+p.After.Stalls > 0:
		t.Fatalf("playback: %+v then %+v\n%s", p.Before, p.After, logs)
	case p.After.From < 19.5 || p.After.To > 30:
		t.Fatalf("after the seek to 20 s: %+v", p.After)
	case p.Before.Comments != 2 || p.Before.Shown != 1 || p.Before.Due != 1 || p.After.Shown != 2 || p.After.Due != 2:
		// "first!" (3 s) is on screen at 4 s, "twelve seconds in" only
		// after the seek.
		t.Fatalf("comments: %+v then %+v", p.Before, p.After)
	case len(p.Errors) > 0 || len(p.Console) > 0:
		t.Fatalf("page errors %q, console errors %q\n%s", p.Errors, p.Console, logs)
	case len(p.Looks) != 4:
		t.Fatalf("looked at %d sizes", len(p.Looks))
	}
	for _, l := range p.Looks {
		if l.Sideways || l.Comments != 2 || l.Shown < 0.98 || l.Covered > 0 {
			t.Errorf("at %s: %+v (want both comments shown, no sideways scroll, the whole picture on screen and none of it under comments)", l.Size, l)
		}
	}
}
