package hls_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

type probe struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
	} `json:"streams"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		PTS         string `json:"pts_time"`
		DTS         string `json:"dts_time"`
		Duration    string `json:"duration_time"`
		Flags       string `json:"flags"`
	} `json:"packets"`
}

// TestFFprobeLive has ffprobe (Debian's ffmpeg, a player without LL-HLS
// support) read the live playlist over HTTP while real parts arrive in real
// time, until the broadcast ends: it must find H.264 and the audio track,
// and every packet of both, with no gap.
func TestFFprobeLive(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	testutil.NeedTool(t, "ffprobe", "ffmpeg")
	for _, audio := range []string{"opus", "aac"} {
		t.Run(audio, func(t *testing.T) {
			t.Parallel()
			stream := mediatest.Generate(t, mediatest.Options{Seconds: 9, Audio: audio})
			srv, err := hls.NewServer(hls.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			mux := http.NewServeMux()
			mux.Handle("/hls/", http.StripPrefix("/hls", srv))
			ts := httptest.NewServer(mux)
			defer ts.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// A node that joined 4 s after the start gets those at once.
			go stream.Feed(ctx, func(c *chunk.Chunk) { srv.Push(c) }, 20, true)

			out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error",
				"-show_entries", "stream=index,codec_name,codec_type:packet=stream_index,pts_time,dts_time,duration_time,flags",
				"-of", "json", ts.URL+"/hls/index.m3u8").Output()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			var p probe
			if err := json.Unmarshal(out, &p); err != nil {
				t.Fatal(err)
			}
			codecs := map[int]string{}
			for _, s := range p.Streams {
				codecs[s.Index] = s.CodecName
			}
			var video, sound int = -1, -1
			for i, c := range codecs {
				switch c {
				case "h264":
					video = i
				case audio:
					sound = i
				}
			}
			if video < 0 || sound < 0 {
				t.Fatalf("streams %v, want h264 and %s", codecs, audio)
			}
			byStream := map[int][][2]float64{} // dts, pts
			keyframes := 0
			for _, pk := range p.Packets {
				dts, err1 := strconv.ParseFloat(pk.DTS, 64)
				pts, err2 := strconv.ParseFloat(pk.PTS, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("packet %+v", pk)
				}
				byStream[pk.StreamIndex] = append(byStream[pk.StreamIndex], [2]float64{dts, pts})
				if pk.StreamIndex == video && pk.Flags[0] == 'K' {
					keyframes++
				}
			}
			for _, idx := range []int{video, sound} {
				pks := byStream[idx]
				sort.SliceStable(pks, func(i, j int) bool { return pks[i][0] < pks[j][0] })
				if len(pks) < 10 {
					t.Fatalf("%s: %d packets", codecs[idx], len(pks))
				}
				span := pks[len(pks)-1][0] - pks[0][0]
				steps := make([]float64, 0, len(pks))
				for i := 1; i < len(pks); i++ {
					steps = append(steps, pks[i][0]-pks[i-1][0])
				}
				sort.Float64s(steps)
				frame := steps[len(steps)/2]
				// A lost part would leave a hole of ~200 ms, six video
				// frames or ten audio frames; ffmpeg's own fragmenter makes
				// the first frame of its file up to 1.7 frames long.
				for i := 1; i < len(pks); i++ {
					step := pks[i][0] - pks[i-1][0]
					if step <= 0 || step > 2.5*frame {
						t.Fatalf("%s: packet %d: dts %.4f after %.4f (frames of %.4f): a gap", codecs[idx], i, pks[i][0], pks[i-1][0], frame)
					}
					if pks[i][1] < 0 || pks[i][0] < 0 {
						t.Fatalf("%s: negative timestamps %v", codecs[idx], pks[i])
					}
				}
				t.Logf("%s: %d packets over %.2f s (frames of %.4f s)", codecs[idx], len(pks), span, frame)
				if n := int(span/frame + 1.5); len(pks) < n-1 {
					t.Fatalf("%s: %d packets over %.2f s, want %d", codecs[idx], len(pks), span, n)
				}
				// ffprobe starts up to three segments before the live edge,
				// and must then read to the end.
				if span < 4 || pks[len(pks)-1][0] < stream.Duration().Seconds()-0.5 {
					t.Fatalf("%s: read %.2f s, up to %.2f of %.2f", codecs[idx], span, pks[len(pks)-1][0], stream.Duration().Seconds())
				}
			}
			if keyframes < 2 {
				t.Fatalf("%d keyframes", keyframes)
			}
		})
	}
}
