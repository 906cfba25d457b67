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

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// studioSize is what tests/browser/studio.mjs saw at one size.
type studioSize struct {
	Size                     string
	Comment, Author, Face    string
	Over, Beside, LowerHalf  bool
	ToolsOver, CountOver     bool
	Fills                    bool
	ViewerSheet              string
	HeartOver                bool
	Viewers                  int
	Sideways                 bool
	ScrollWidth, ClientWidth int
	HeartNodes               int
	Health                   struct {
		Kbps, Encoded, Sent int
		Dropped, Lost, RTT  int
		Level, Text         string
	}
}

// studioSummary is the panel End showed (tests/browser/studio.mjs).
type studioSummary struct {
	Sizes []struct {
		Size, Duration, Replay string
		Peak, Total, Hearts    int
		ReplayViews            int
		Shown, Sideways        bool
	}
	ReplayStatus int
	ReplayPlayed float64
	ReplayMode   string
	Again        struct {
		State, Button string
		SummaryHidden bool
	}
}

// TestStudioPage goes live from the go-live page (over HTTPS, as a phone
// would) with Chromium's fake camera, while a viewer on another node
// comments and sends hearts through its node's chat API, as its player
// page would (tests/browser/studio.mjs; a second page playing the video
// beside it starved the go-live page's WebRTC on a loaded machine): at a
// phone's size and two tablets' the preview fills the screen, and the
// comment (with a face), the hearts, the count and the tools lie over it;
// a tap on the count lists who watches; the share sheet's two links are
// the broadcast's and copy; no console error, no policy violation, no
// sideways scroll. Comments off is refused at the viewer's node, on again
// is taken (and the comment's frame time shows as the nearest viewer's
// latency); a tap on a comment and one on Delete delete it at the viewer's
// node too, and Block takes its author's comments away. The health line
// shows a bitrate while live; End shows a summary whose replay link plays
// (checkStudioSummary). PEERSCOPE_SHOTS=DIR keeps a screenshot at each size.
func TestStudioPage(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	log, _ := newLogs(t, slog.LevelInfo) // shown when the test fails
	root, err := node.New(t.Context(), node.Config{Slots: 2, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "studio", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	vn := newNode(t, node.Config{})
	w, err := vn.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the viewer in the tree", func() bool { return depth(t, w) >= 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	args := []string{"--url", b.URLs().BroadcasterPage, "--viewer", w.URLs().Player, "--token", vn.APIToken()}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	out, err := browsertest.Run(ctx, t, "studio.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error      string
		Errors     []string
		Violations []string
		Share      struct{ Web, App, ID, Copied, CopiedWeb string }
		Off        struct {
			Label, Refused string
			On, TakenAgain bool
		}
		FollowersHidden bool
		Nearest         struct {
			Ms   int
			Text string
		}
		Sizes           []studioSize
		MaxHeartNodes   int
		BurstFloated    int
		AfterEnd        struct{ On, CommentsHidden bool }
		HeartsSent      int
		Summary         studioSummary
		DeletedAtViewer bool
		AfterBlock      struct {
			Comments int
			Note     string
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("studio.mjs printed %s: %v", out, err)
	}
	t.Logf("studio.mjs: %s", out)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 || len(r.Violations) > 0 {
		t.Errorf("the go-live page: errors %q, policy violations %q", r.Errors, r.Violations)
	}
	if r.Share.ID != b.ID() || r.Share.App != b.Link().String() || r.Share.Web != b.URLs().Player || r.Share.Copied != r.Share.App ||
		r.Share.CopiedWeb != r.Share.Web {
		t.Errorf("share row %+v; want %s and %s", r.Share, b.Link(), b.URLs().Player)
	}
	if len(r.Sizes) != 4 { // a phone, two tablets, a phone turned
		t.Fatalf("saw %d sizes", len(r.Sizes))
	}
	for _, s := range r.Sizes {
		placed := s.Over && s.LowerHalf && s.ToolsOver && s.CountOver && s.Fills // over the lower part of the video, which fills the screen
		if !strings.Contains(s.Comment, "at "+s.Size) || s.Author != "anonymous" || s.Face != "?" || !placed || !s.HeartOver ||
			!strings.Contains(s.ViewerSheet, "anonymous") ||
			s.Viewers < 1 || s.Sideways || s.HeartNodes > 300 || s.Health.Kbps <= 0 || s.Health.Encoded <= 0 || s.Health.Text == "" {
			t.Errorf("%s: %+v", s.Size, s)
		}
	}
	if r.MaxHeartNodes > 300 || r.BurstFloated < 30 {
		t.Errorf("a burst of 30 hearts: %d floated, %d in the air at once; want all 30, at most 300", r.BurstFloated, r.MaxHeartNodes)
	}
	if !r.DeletedAtViewer || r.AfterBlock.Comments != 0 || r.AfterBlock.Note != "" {
		t.Errorf("moderation: deleted at the viewer %v, after the block %+v", r.DeletedAtViewer, r.AfterBlock)
	}
	if !r.Off.On || r.Off.Label != "Comments on" || !strings.Contains(r.Off.Refused, "comments are off") || !r.Off.TakenAgain {
		t.Errorf("comments off from the studio: %+v", r.Off)
	}
	// The comment said its frame was 1.5 s old: the nearest viewer's
	// latency, in the health line (its trip through the chat adds a little).
	if r.Nearest.Ms < 1500 || r.Nearest.Ms > 6000 || !strings.Contains(r.Nearest.Text, " s behind") {
		t.Errorf("the nearest viewer's latency: %+v", r.Nearest)
	}
	if !r.FollowersHidden {
		t.Error("followers only offered by a node with no community")
	}
	if r.AfterEnd.On || !r.AfterEnd.CommentsHidden {
		t.Errorf("after End: %+v", r.AfterEnd)
	}
	checkStudioSummary(t, r.Summary, r.HeartsSent, b.ID())
	checkStudioAfterEnd(t, root.HTTPURL()+"/broadcast/live", b)
}

// checkStudioAfterEnd: the ended broadcast's key still opens
// /broadcast/live (the summary's replay comes from there), and nothing
// else does.
func checkStudioAfterEnd(t *testing.T, url string, b *node.Broadcast) {
	t.Helper()
	c := &http.Client{}
	defer c.CloseIdleConnections()
	code, _, body := goLiveCall{method: "GET", url: url, key: b.StreamKey()}.do(t, c)
	var live struct {
		ID, Replay string
		Ended      bool
	}
	if err := json.Unmarshal([]byte(body), &live); err != nil || code != http.StatusOK || !live.Ended || live.ID != b.ID() ||
		live.Replay != strings.TrimSuffix(b.URLs().Player, b.URLs().Path)+"/r/"+b.ID()+"/" {
		t.Errorf("GET live after the end: %d %s (%v)", code, body, err)
	}
	for _, key := range []string{"", "nope"} {
		if code, _, body := (goLiveCall{method: "GET", url: url, key: key}).do(t, c); code != http.StatusUnauthorized {
			t.Errorf("GET live after the end with key %q: %d %q", key, code, body)
		}
	}
}

// checkStudioSummary: End shows the duration, at least the one viewer, at
// least the hearts sent, and the replay (the node seals one at the end),
// whose page loads; Go live again goes back to the start.
func checkStudioSummary(t *testing.T, s studioSummary, heartsSent int, id string) {
	t.Helper()
	if len(s.Sizes) != 4 {
		t.Fatalf("summary seen at %d sizes", len(s.Sizes))
	}
	for _, z := range s.Sizes {
		if !z.Shown || z.Sideways || !strings.Contains(z.Duration, ":") || z.Peak < 1 || z.Total < z.Peak || z.Hearts < heartsSent || z.ReplayViews < 0 ||
			!strings.HasSuffix(z.Replay, "/r/"+id+"/") {
			t.Errorf("summary at %s: %+v (hearts sent %d)", z.Size, z, heartsSent)
		}
	}
	if s.ReplayStatus != 200 || s.ReplayPlayed <= 1 || s.ReplayMode != "vod" {
		t.Errorf("the replay link answered %d, played to %.1f s in mode %q", s.ReplayStatus, s.ReplayPlayed, s.ReplayMode)
	}
	if !s.Again.SummaryHidden || s.Again.Button != "Go live" || (s.Again.State != "idle" && s.Again.State != "preview") {
		t.Errorf("Go live again: %+v", s.Again)
	}
}

// TestStudioPeople: the studio of a node signed in at a community, with a
// viewer signed in too and followed (tests/browser/studio-people.mjs): the
// viewer's comment shows its name and face, not "anonymous"; a tap on the
// count lists the viewer by name; Followers only, offered because the
// node has a community, shows its state over the preview, still takes the
// followed viewer's comment, and is undone; the summary counts one
// signed-in viewer.
func TestStudioPeople(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	log, _ := newLogs(t, slog.LevelInfo)
	root, err := node.New(t.Context(), node.Config{Slots: 2, Logger: log, Bootstrap: []string{svc.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	vn := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	signIn(t, root, "100")
	signIn(t, vn, "200")
	follow(t, svc, root, "twitter:200")
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "people", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := vn.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the viewer in the tree", func() bool { return depth(t, w) >= 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	args := []string{"--url", b.URLs().BroadcasterPage, "--viewer", w.URLs().Player, "--token", vn.APIToken()}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	out, err := browsertest.Run(ctx, t, "studio-people.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("studio-people.mjs: %s", out)
	var r struct {
		Error   string
		Errors  []string
		Comment struct{ Author, Face string }
		Sheet   struct {
			Names, Faces []string
			Anon         string
		}
		Followers struct {
			State, Label, Note        string
			TakenFromFollowed, Undone bool
		}
		SummaryNamed int
		SummaryWeb   string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("studio-people.mjs printed %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 {
		t.Errorf("the go-live page: errors %q", r.Errors)
	}
	if r.Comment.Author == "" || r.Comment.Author == "anonymous" || r.Comment.Face == "" || r.Comment.Face == "?" {
		t.Errorf("the signed-in viewer's comment: %+v", r.Comment)
	}
	if len(r.Sheet.Names) != 1 || r.Sheet.Names[0] != r.Comment.Author || r.Sheet.Faces[0] != r.Comment.Face {
		t.Errorf("who watches: %+v, the comment's author %q", r.Sheet, r.Comment.Author)
	}
	if r.Followers.State != "Only people you follow can comment" || r.Followers.Label != "Open to all" || r.Followers.Note != "" ||
		!r.Followers.TakenFromFollowed || !r.Followers.Undone {
		t.Errorf("followers only: %+v", r.Followers)
	}
	if r.SummaryNamed != 1 {
		t.Errorf("the summary counted %d signed-in viewers", r.SummaryNamed)
	}
	// Listed at the community: the summary offers its web page, which
	// offers the replay, to share.
	if want := strings.TrimSuffix(svc.URL(), "/") + "/w/" + b.ID() + "/"; r.SummaryWeb != want {
		t.Errorf("the summary's web link %q, want %q", r.SummaryWeb, want)
	}
}
