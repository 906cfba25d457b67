package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
	"github.com/peerscope/peerscope/node"
)

// timecodeCrop is where the clip burns in its timecode (x, y, w, h in its
// 640x360 pictures): "hh:mm:ss.mmm fN", different in every frame.
var timecodeCrop = [4]int{112, 300, 416, 48}

// TestMeasureLatency measures, for a viewer three hops from the
// broadcaster on loopback, capture → display of the frames a headless
// Chromium shows, over WHEP and over LL-HLS, and page open → first frame.
// It is a measurement, not a test: it runs only with PEERSCOPE_MEASURE=1
// (PEERSCOPE_MEASURE_SECONDS sets how long each way is watched, default 30)
// and prints its figures; docs/BENCHMARKS.md has them.
//
// How: the broadcaster plays the embedded clip, looped, paced, and notes
// the capture wallclock of every video sample it hands to the packager (a
// paced file's sample is captured when it is due; sample k of the loop shows
// frame k mod 300). The page's frames are sampled as they are presented
// (requestVideoFrameCallback): the timecode region is copied from the very
// frame presented, and Go identifies the frame by its pixels (normalized
// correlation against the clip's 300 frames decoded by ffmpeg); latency is
// the frame's expected display time minus its own capture time.
func TestMeasureLatency(t *testing.T) {
	if os.Getenv("PEERSCOPE_MEASURE") == "" {
		t.Skip("a measurement: PEERSCOPE_MEASURE=1 go test -count=1 -run TestMeasureLatency -v ./node/")
	}
	browsertest.Need(t)
	needTool(t, "ffmpeg")
	seconds := 30
	if s, err := strconv.Atoi(os.Getenv("PEERSCOPE_MEASURE_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	refs := clipCrops(t, timecodeCrop)
	t.Logf("load average at the start: %s", loadavg())

	rec := &recordingSource{src: sampleSource(t, ingest.WithLoop())}
	root := newNode(t, node.Config{Slots: 1})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "Latency, 3 hops", Source: rec})
	if err != nil {
		t.Fatal(err)
	}
	deep := chain(t, b.Link(), 3, nil)[2]
	waitHLS(t, deep, 30*time.Second)

	// The node's own figure: capture of a part's first sample → its
	// receipt at depth 3, averaged over the parts received meanwhile.
	st0, err := deep.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	defer func() {
		st, err := deep.Status(context.Background())
		if err != nil || st.Received <= st0.Received {
			return
		}
		mean := (st.LatencySum - st0.LatencySum) / time.Duration(st.Received-st0.Received)
		t.Logf("capture of a part's first sample → receipt at depth 3 (the node's live latency), mean over %d parts: %v",
			st.Received-st0.Received, mean.Round(time.Millisecond))
	}()
	for _, way := range []struct{ name, query, mode string }{
		{"WHEP (default)", "", "whep"},
		{"LL-HLS", "?mode=hls", "hls"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(seconds+120)*time.Second)
		out := filepath.Join(t.TempDir(), "frames.json")
		c := timecodeCrop
		line, err := browsertest.Run(ctx, t, "latency.mjs", "--url", deep.URLs().Player+way.query, "--out", out,
			"--seconds", strconv.Itoa(seconds), "--crop", fmt.Sprintf("%d,%d,%d,%d", c[0], c[1], c[2], c[3]), "--startups", "5")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Mode     string   `json:"mode"`
			Error    string   `json:"error"`
			Samples  int      `json:"samples"`
			Stalls   int      `json:"stalls"`
			Errors   []string `json:"errors"`
			Log      []string `json:"log"`
			Startups []struct {
				OpenToFrameMs int    `json:"openToFrameMs"`
				PageStartupMs int    `json:"pageStartupMs"`
				Mode          string `json:"mode"`
			} `json:"startups"`
		}
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatalf("latency.mjs printed %q: %v", line, err)
		}
		if res.Error != "" || res.Mode != way.mode {
			t.Fatalf("%s: mode %q, error %q\n%s", way.name, res.Mode, res.Error, strings.Join(res.Log, "\n"))
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var frames []struct {
			DisplayUnixMs float64 `json:"displayUnixMs"`
			Width         int     `json:"width"`
			Height        int     `json:"height"`
			PageLatencyMs *int    `json:"pageLatencyMs"`
			Grey          string  `json:"grey"`
		}
		if err := json.Unmarshal(raw, &frames); err != nil {
			t.Fatal(err)
		}
		walls := rec.Walls()
		if n := len(walls) - sample.VideoFrames; n > 0 {
			t.Logf("capture: %d video samples; sample %d was captured %v after sample %d (one loop of the clip)",
				len(walls), n+sample.VideoFrames-1, walls[n+sample.VideoFrames-1].Sub(walls[n-1]), n-1)
		}
		var lat, page []float64
		unmatched, worst := 0, 1.0
		for _, f := range frames {
			grey, err := base64.StdEncoding.DecodeString(f.Grey)
			if err != nil || f.Width != sample.Width || f.Height != sample.Height {
				t.Fatalf("a sample of %dx%d (%v)", f.Width, f.Height, err)
			}
			idx, score := bestMatch(refs, grey)
			worst = min(worst, score)
			if score < 0.9 {
				unmatched++
				continue
			}
			shown := time.UnixMicro(int64(f.DisplayUnixMs * 1000))
			captured, ok := captureOf(walls, idx, shown)
			if !ok {
				unmatched++
				continue
			}
			lat = append(lat, float64(shown.Sub(captured))/float64(time.Millisecond))
			if f.PageLatencyMs != nil {
				page = append(page, float64(*f.PageLatencyMs))
			}
		}
		var opens []int
		for i, s := range res.Startups {
			if i > 0 { // the first open is of a cold browser
				opens = append(opens, s.OpenToFrameMs)
			}
		}
		t.Logf("%s: %d frames sampled over %d s, %d not identified (lowest correlation with the frame identified %.3f), %d stalls; page errors %q",
			way.name, len(frames), seconds, unmatched, worst, res.Stalls, res.Errors)
		t.Logf("%s: startups (page open → first frame, ms; the first in a cold browser): %v", way.name, res.Startups)
		s := fmt.Sprintf("%s at depth 3: capture → display median %.0f ms, p95 %.0f ms (min %.0f, max %.0f, n %d); the page's own readout median %.0f ms; page open → first frame median %d ms (%v, warm browser)",
			way.name, percentile(lat, 50), percentile(lat, 95), percentile(lat, 0), percentile(lat, 100), len(lat), percentile(page, 50), medianInt(opens), opens)
		t.Log(s)
		summary = append(summary, s)
		if len(lat) < len(frames)/2 || len(lat) < 20 {
			t.Errorf("%s: only %d of %d frames identified", way.name, len(lat), len(frames))
		}
	}
	t.Logf("load average at the end: %s", loadavg())
	for _, s := range summary {
		t.Log(s)
	}
}

// clipCrops decodes the clip with ffmpeg and returns the crop region of
// each of its frames in grey levels (luma), normalized.
func clipCrops(t *testing.T, c [4]int) [][]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0",
		"-vf", fmt.Sprintf("crop=%d:%d:%d:%d,format=gray", c[2], c[3], c[0], c[1]), "-f", "rawvideo", "pipe:1")
	cmd.Stdin = bytes.NewReader(sample.TS())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	size := c[2] * c[3]
	if len(out) != sample.VideoFrames*size {
		t.Fatalf("ffmpeg decoded %d bytes, want %d frames of %d", len(out), sample.VideoFrames, size)
	}
	var crops [][]float64
	for i := range sample.VideoFrames {
		crops = append(crops, normalized(out[i*size:(i+1)*size]))
	}
	return crops
}

// normalized returns b less its mean, scaled to unit length: the dot
// product of two is their correlation, whatever the brightness and contrast
// (the browser's RGB → grey and ffmpeg's luma differ in both).
func normalized(b []byte) []float64 {
	var mean float64
	for _, v := range b {
		mean += float64(v)
	}
	mean /= float64(len(b))
	out := make([]float64, len(b))
	var ss float64
	for i, v := range b {
		out[i] = float64(v) - mean
		ss += out[i] * out[i]
	}
	if ss = math.Sqrt(ss); ss > 0 {
		for i := range out {
			out[i] /= ss
		}
	}
	return out
}

// bestMatch returns the index of the reference (normalized) most like grey
// and their correlation.
func bestMatch(refs [][]float64, grey []byte) (int, float64) {
	g := normalized(grey)
	best, score := -1, -2.0
	for i, r := range refs {
		if len(r) != len(g) {
			continue
		}
		var dot float64
		for j, v := range r {
			dot += v * g[j]
		}
		if dot > score {
			best, score = i, dot
		}
	}
	return best, score
}

// captureOf returns the capture time of the latest showing of clip frame
// idx before shown: video sample k of the looped clip is frame k mod 300.
func captureOf(walls []time.Time, idx int, shown time.Time) (time.Time, bool) {
	var at time.Time
	found := false
	for k := idx; k < len(walls); k += sample.VideoFrames {
		if walls[k].After(shown) {
			break
		}
		at, found = walls[k], true
	}
	return at, found
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func medianInt(xs []int) int {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
