package node_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
)

// firstCapture reads the capture time of a live broadcast's first frame
// from its playlist.
func firstCapture(t *testing.T, b *node.Broadcast) time.Time {
	t.Helper()
	pl := string(get(t, b.URLs().HLS))
	i := strings.Index(pl, "#EXT-X-PROGRAM-DATE-TIME:")
	if i < 0 {
		t.Fatalf("no PROGRAM-DATE-TIME in\n%s", pl)
	}
	first, err := time.Parse("2006-01-02T15:04:05.000Z", strings.TrimSpace(strings.SplitN(pl[i+25:], "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// heartLag is how far behind the live edge the viewer that taps in
// TestReplayMoments watches: its hearts say the frame they watched, which
// was captured this long before they were sent.
const heartLag = 3 * time.Second

// momentsReplay runs TestReplayMoments's broadcast and opens its replay on
// a third node; it returns the replay and when the hearts were sent
// (seconds after the first frame's capture).
func momentsReplay(t *testing.T) (*node.Replay, float64) {
	t.Helper()
	log, _ := newLogs(t, slog.LevelInfo)
	root := newNode(t, node.Config{Slots: 2, Logger: log.With("name", "broadcaster")})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "moments", Source: gated{gate, clipFor(t, 14*time.Second, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	var ws []*node.Broadcast
	var ns []*node.Node
	for range 2 {
		v := newNode(t, node.Config{Slots: 1, Logger: log.With("name", "viewer")})
		w, err := v.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the viewer in the tree", func() bool { return depth(t, w) >= 1 })
		ws, ns = append(ws, w), append(ns, v)
	}
	close(gate)
	waitFor(t, 30*time.Second, "the broadcast under way", func() bool { return received(t, b) > 2 })
	first := firstCapture(t, b)
	comment := func(w *node.Broadcast, text string, at time.Duration) string {
		var id string
		waitFor(t, 30*time.Second, "the chat to take "+text, func() bool {
			if time.Now().Before(first.Add(at)) {
				return false
			}
			code, body := postChat(t, w.URLs().Player+"chat/comment", "", map[string]any{"text": text, "at": first.Add(at).UnixMilli()})
			var r struct{ ID string }
			_ = json.Unmarshal([]byte(body), &r)
			id = r.ID
			return code == http.StatusOK
		})
		return id
	}
	comment(ws[0], "three seconds in", 3*time.Second)
	comment(ws[1], "from someone blocked later", 4*time.Second)
	gone := comment(ws[0], "deleted by the owner", 5*time.Second)
	for _, mod := range []map[string]string{{"op": "delete", "target": gone}, {"op": "block", "target": ns[1].ID().String()}} {
		if code, body := postChat(t, b.URLs().Player+"chat/moderate", root.OwnerToken(), mod); code != http.StatusNoContent {
			t.Fatalf("%v: %d %s", mod, code, body)
		}
	}
	waitFor(t, 30*time.Second, "six seconds in", func() bool { return !time.Now().Before(first.Add(6 * time.Second)) })
	sent := time.Now()
	sentHearts := sent.Sub(first).Seconds()
	// 5 taps by a viewer heartLag behind, which says so (as its player
	// page does: the frame's capture time); 2 more that say nothing.
	watched := sent.Add(-heartLag).UnixMilli()
	if code, body := postChat(t, ws[0].URLs().Player+"chat/heart", "", map[string]int64{"n": 5, "at": watched}); code != http.StatusNoContent {
		t.Fatalf("hearts: %d %s", code, body)
	}
	if code, body := postChat(t, ws[0].URLs().Player+"chat/heart", "", map[string]int{"n": 2}); code != http.StatusNoContent {
		t.Fatalf("hearts: %d %s", code, body)
	}
	select {
	case <-b.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the broadcast did not end")
	}

	late := newNode(t, node.Config{Slots: node.NoRelay, Logger: log.With("name", "replay-viewer")})
	r, err := late.Replay(t.Context(), link.Link{Broadcast: b.ID(), Peers: []peer.AddrInfo{{ID: root.ID(), Addrs: root.Host().Addrs()}}})
	if err != nil {
		t.Fatal(err)
	}
	return r, sentHearts
}

// TestReplayMoments: a live broadcast (real time, 14 s) with two viewers
// on real hosts; one comments 3 s in and, about 6 s in, sends 5 hearts
// while watching a frame heartLag (3 s) behind, and says so; the other
// comments 4 s in and is then blocked; the first sends 2 more hearts
// without a moment; a comment of the first, 5 s in, is deleted by the owner. Once it ended, a
// third node opens the replay from the link and its page's api/comments
// lists the first comment at 3 s (neither the deleted one nor the blocked
// author's), its api/hearts the 5 at the frame their tapper watched (about
// 3 s in, not when they reached the broadcaster) and the 2 where they
// reached it (around 6 s); a request with a query is refused.
func TestReplayMoments(t *testing.T) {
	e2e(t)
	r, sentHearts := momentsReplay(t)
	var comments []struct {
		At   float64
		Text string
	}
	if err := json.Unmarshal(get(t, r.PlayerURL()+"api/comments"), &comments); err != nil {
		t.Fatal(err)
	}
	var hearts []struct {
		At    float64
		Count int
	}
	if err := json.Unmarshal(get(t, r.PlayerURL()+"api/hearts"), &hearts); err != nil {
		t.Fatal(err)
	}
	t.Logf("replay: comments %+v, hearts %+v (sent %.1f s in)", comments, hearts, sentHearts)
	if len(comments) != 1 || comments[0].Text != "three seconds in" || comments[0].At < 2.8 || comments[0].At > 3.2 {
		t.Fatalf("the replay's comments: %+v", comments)
	}
	watched := sentHearts - heartLag.Seconds()
	var atFrame, atArrival int
	for _, h := range hearts {
		switch {
		case h.At > watched-1.1 && h.At < watched+0.6:
			// At the second of the frame watched (binned by the second).
			atFrame += h.Count
		case h.At > sentHearts-1.1 && h.At < sentHearts+3:
			// Without a moment: as they reached the broadcaster, within
			// a few seconds of the tap (binned by the second too).
			atArrival += h.Count
		default:
			t.Fatalf("hearts at %.1f s; sent %.1f s in, watching %.1f s: %+v", h.At, sentHearts, watched, hearts)
		}
	}
	if atFrame != 5 || atArrival != 2 {
		t.Fatalf("the replay's hearts: %d at the frame watched (%.1f s), %d at arrival (%.1f s); want 5 and 2: %+v",
			atFrame, watched, atArrival, sentHearts, hearts)
	}
	resp, err := http.Get(r.PlayerURL() + "api/hearts?from=forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("api/hearts with a query: %d", resp.StatusCode)
	}
}
