package hls_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

// vodOf builds a VOD from a stream's chunks, fetching parts from memory
// (fail makes one part unavailable).
func vodOf(t *testing.T, chunks []*chunk.Chunk, fail uint64) *hls.VOD {
	t.Helper()
	payloads := map[uint64][]byte{}
	var items []hls.VODItem
	for _, c := range chunks {
		switch {
		case c.IsInit():
			items = append(items, hls.VODItem{Seq: c.Seq, Init: c.Payload, Wallclock: time.Unix(0, c.Wallclock)})
		case len(c.Payload) > 0:
			items = append(items, hls.VODItem{Seq: c.Seq, Duration: time.Duration(c.Duration), Independent: c.IsKeyframe(), Wallclock: time.Unix(0, c.Wallclock)})
			payloads[c.Seq] = c.Payload
		}
	}
	v, err := hls.NewVOD(hls.VODConfig{Items: items, Fetch: func(_ context.Context, seq uint64) ([]byte, error) {
		if seq == fail {
			return nil, errors.New("no peer has it")
		}
		return payloads[seq], nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVODPlaylist(t *testing.T) {
	stream := mediatest.Generate(t, mediatest.Options{Seconds: 9})
	start := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	chunks := stream.Chunks("b", start, true)
	v := vodOf(t, chunks, 7)
	if d := v.Duration(); d != stream.Duration() {
		t.Fatalf("duration %v, want %v", d, stream.Duration())
	}
	ts := httptest.NewServer(http.StripPrefix("/vod", v))
	defer ts.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + "/vod/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, pl := get("index.m3u8")
	if code != 200 || !strings.Contains(pl, "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") ||
		!strings.Contains(pl, "#EXT-X-MAP:URI=\"init/0.mp4\"") || strings.Count(pl, "#EXTINF") != len(v.Segments()) {
		t.Fatalf("playlist %d:\n%s", code, pl)
	}
	for _, s := range v.Segments() {
		p0 := chunks[s.Parts[0]+1] // chunks[0] is the init
		if !p0.IsKeyframe() {
			t.Fatalf("segment %d starts with a part that is not a keyframe", s.MSN)
		}
	}
	// The segment holding part 7 cannot be served; the others can.
	for _, s := range v.Segments() {
		code, _ := get("seg/" + strconv.FormatUint(s.MSN, 10) + ".m4s")
		has7 := false
		for _, p := range s.Parts {
			has7 = has7 || p == 7
		}
		if want := map[bool]int{true: http.StatusBadGateway, false: 200}[has7]; code != want {
			t.Fatalf("segment %d: %d, want %d", s.MSN, code, want)
		}
	}
	if code, _ := get("seg/99.m4s"); code != 404 {
		t.Fatalf("unknown segment: %d", code)
	}
	// Wallclock → media time: the capture of part 10 is where it starts.
	var at time.Duration
	for _, c := range chunks[1:11] {
		at += time.Duration(c.Duration)
	}
	if got := v.MediaTime(time.Unix(0, chunks[11].Wallclock).Add(10 * time.Millisecond)); got != at+10*time.Millisecond {
		t.Fatalf("media time %v, want %v", got, at+10*time.Millisecond)
	}
	if got := v.MediaTime(start.Add(-time.Hour)); got != 0 {
		t.Fatalf("before the start: %v", got)
	}
	// In one pass, the same as one by one: before the start, on and
	// between captures, after the end, in order and not.
	var walls []time.Time
	for w := start.Add(-time.Second); w.Before(time.Unix(0, chunks[len(chunks)-1].Wallclock).Add(2 * time.Second)); w = w.Add(37 * time.Millisecond) {
		walls = append(walls, w)
	}
	rev := slices.Clone(walls)
	slices.Reverse(rev)
	for _, ws := range [][]time.Time{walls, rev} {
		got := v.MediaTimes(ws)
		for i, w := range ws {
			if want := v.MediaTime(w); got[i] != want {
				t.Fatalf("MediaTimes at %v: %v, MediaTime %v", w.Sub(start), got[i], want)
			}
		}
	}
}

// TestVODFFprobe: ffprobe reads the whole VOD: H.264 and audio, for the
// stream's length.
func TestVODFFprobe(t *testing.T) {
	testutil.NeedTool(t, "ffprobe", "ffmpeg")
	stream := mediatest.Generate(t, mediatest.Options{Seconds: 9})
	v := vodOf(t, stream.Chunks("b", time.Now(), true), 1<<60)
	ts := httptest.NewServer(http.StripPrefix("/vod", v))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,codec_type",
		"-of", "json", ts.URL+"/vod/index.m3u8").Output()
	if err != nil {
		t.Fatalf("ffprobe: %v %s", err, out)
	}
	var p struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	types := map[string]string{}
	for _, s := range p.Streams {
		types[s.CodecType] = s.CodecName
	}
	t.Logf("ffprobe: %v, duration %.2f s (stream %.2f s)", types, d, stream.Duration().Seconds())
	if types["video"] != "h264" || types["audio"] == "" || d < stream.Duration().Seconds()-0.5 || d > stream.Duration().Seconds()+0.5 {
		t.Fatalf("ffprobe saw %v, %.2f s", types, d)
	}
}
