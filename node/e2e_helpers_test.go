package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/node"
)

// The end-to-end tests (e2e_*_test.go) run real nodes on loopback with real
// media: the embedded clip, Chromium's fake camera over WHIP, ffmpeg over
// RTMP. They run in real time, so -short skips them.

// e2e skips t under -short.
func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-time end-to-end test")
	}
}

// needTool skips t when a program is missing (and fails it under CI, whose
// .ci/run installs it).
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (apt-get install ffmpeg)", name)
		}
		t.Skipf("%s not found (apt-get install ffmpeg)", name)
	}
}

// logs collects the nodes' logs and prints them if the test fails: a
// goroutine that logs after the test has ended must not call t.Log.
type logs = testutil.Buffer

// newLogs returns a logger at level for the test's nodes; the test's
// cleanup prints what it wrote when the test failed. Call it before making
// the nodes, so that it prints after they are closed.
func newLogs(t *testing.T, level slog.Level) (*slog.Logger, *logs) {
	l := &logs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", l.String())
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level})), l
}

// chain makes hops viewer nodes of link, each joining when the one before
// is in the tree, so that they hang in a line below a broadcaster that
// offers one slot: the i-th is i hops deep and the last relays to nobody.
func chain(t *testing.T, link link.Link, hops int, log *slog.Logger) []*node.Broadcast {
	t.Helper()
	var out []*node.Broadcast
	for i := 1; i <= hops; i++ {
		slots := 1
		if i == hops {
			slots = node.NoRelay
		}
		cfg := node.Config{Slots: slots}
		if log != nil {
			cfg.Logger = log.With("node", fmt.Sprintf("viewer%d", i))
		}
		v := newNode(t, cfg)
		w, err := v.Watch(t.Context(), link)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("viewer %d in the tree", i), func() bool { return depth(t, w) == i })
		out = append(out, w)
	}
	return out
}

// received returns how many media chunks b has delivered to its players.
func received(t *testing.T, b *node.Broadcast) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.Status(ctx)
	if err != nil {
		return 0
	}
	return st.Received
}

// waitHLS waits until b's LL-HLS playlist lists a whole segment.
func waitHLS(t *testing.T, b *node.Broadcast, within time.Duration) {
	t.Helper()
	waitFor(t, within, "a segment in "+b.URLs().HLS, func() bool {
		resp, err := http.Get(b.URLs().HLS)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte("#EXTINF"))
	})
}

// probedStream is one stream as ffprobe sees it, with the frames it decoded.
type probedStream struct {
	Index      int    `json:"index"`
	CodecName  string `json:"codec_name"`
	CodecType  string `json:"codec_type"`
	Profile    string `json:"profile"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Frames     int    // decoded frames of this stream
}

// probeHLS has ffprobe decode the first seconds of an LL-HLS playlist
// (live or ended) and returns its streams by codec name, with how many
// frames of each it decoded: a stream that decodes is one a player plays.
func probeHLS(t *testing.T, url string, seconds int) map[string]probedStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error",
		"-read_intervals", "%+"+strconv.Itoa(seconds),
		"-show_entries", "stream=index,codec_name,codec_type,profile,width,height,sample_rate:frame=stream_index",
		"-of", "json", url).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr)
	}
	var p struct {
		Streams []probedStream `json:"streams"`
		Frames  []struct {
			StreamIndex int `json:"stream_index"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe printed %.200q: %v", out, err)
	}
	frames := map[int]int{}
	for _, f := range p.Frames {
		frames[f.StreamIndex]++
	}
	streams := map[string]probedStream{}
	var names []string
	for _, s := range p.Streams {
		s.Frames = frames[s.Index]
		streams[s.CodecName] = s
		names = append(names, s.CodecName)
	}
	t.Logf("ffprobe %s: streams %s", url, strings.Join(names, ", "))
	return streams
}

// recordingSource plays src and notes the capture wallclock of every video
// sample, in order: sample k of a looped clip of n frames shows frame k mod n.
type recordingSource struct {
	src media.Source

	mu    sync.Mutex
	video int // the video track's ID
	walls []time.Time
}

func (r *recordingSource) Run(ctx context.Context, sink media.Sink) error {
	return r.src.Run(ctx, recordingSink{r, sink})
}

// Walls returns the wallclocks of the video samples so far.
func (r *recordingSource) Walls() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.walls...)
}

type recordingSink struct {
	r *recordingSource
	media.Sink
}

func (s recordingSink) Tracks(tracks []media.Track) error {
	s.r.mu.Lock()
	for _, tr := range tracks {
		if tr.IsVideo() {
			s.r.video = tr.ID
		}
	}
	s.r.mu.Unlock()
	return s.Sink.Tracks(tracks)
}

func (s recordingSink) Sample(smp media.Sample) error {
	s.r.mu.Lock()
	if smp.Track == s.r.video {
		s.r.walls = append(s.r.walls, smp.Wallclock)
	}
	s.r.mu.Unlock()
	return s.Sink.Sample(smp)
}

// ended reports whether a broadcast has ended (its Done is closed).
func ended(b *node.Broadcast) bool {
	select {
	case <-b.Done():
		return true
	default:
		return false
	}
}
