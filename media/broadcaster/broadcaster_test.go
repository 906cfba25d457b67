package broadcaster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/internal/tlscert"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/internal/mediatest"
	"github.com/peerscope/peerscope/media/whip"
)

func TestPageServed(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/broadcast", New(Config{WHIP: `../in"gest`})))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := get("/broadcast/")
	if resp.StatusCode != 200 || !strings.Contains(body, `data-whip="../in&#34;gest"`) || !strings.Contains(body, "Go live") {
		t.Fatalf("page: %s\n%s", resp.Status, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "mediastream:") {
		t.Errorf("CSP %q", csp)
	}
	for _, p := range []string{"/broadcast/broadcast.js", "/broadcast/broadcast.css", "/broadcast/studio.js", "/broadcast/index.html"} {
		if resp, _ := get(p); resp.StatusCode != 200 {
			t.Errorf("%s: %s", p, resp.Status)
		}
	}
	if resp, _ := get("/broadcast/assets/index.html"); resp.StatusCode != 404 {
		t.Errorf("assets/: %s", resp.Status)
	}
	resp, err := http.Post(srv.URL+"/broadcast/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
}

// TestPageAudienceConfig: Config.Audience and Config.Studio reach the page,
// escaped, and an absolute one is let through the page's policy (once,
// with WHIP's host); without them the page asks nothing more than WHIP.
func TestPageAudienceConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg           Config
		attr, connect string
	}{
		{Config{}, `data-audience=""`, "connect-src 'self';"},
		{Config{Audience: `aud"ience`}, `data-audience="aud&#34;ience"`, "connect-src 'self';"},
		{Config{WHIP: "https://node.example:8443/whip", Audience: "https://node.example:8443/audience"},
			`data-audience="https://node.example:8443/audience"`, "connect-src 'self' https://node.example:8443;"},
		{Config{Audience: "https://other.example/audience"}, `data-audience="https://other.example/audience"`,
			"connect-src 'self' https://other.example;"},
		{Config{Studio: `./"s`}, `data-studio="./&#34;s"`, "connect-src 'self';"},
		{Config{Studio: "https://studio.example/broadcast/"}, `data-studio="https://studio.example/broadcast/"`,
			"connect-src 'self' https://studio.example;"},
	} {
		rec := httptest.NewRecorder()
		New(tc.cfg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body, csp := rec.Body.String(), rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(body, tc.attr) || !strings.Contains(csp, tc.connect) || strings.Contains(body, "{{.Audience}}") || strings.Contains(body, "{{.Studio}}") {
			t.Errorf("%+v: page %q, policy %q; want %s and %s", tc.cfg, body[strings.Index(body, "<body"):][:120], csp, tc.attr, tc.connect)
		}
	}
}

// broadcastResult is what tests/browser/broadcast.mjs prints.
type broadcastResult struct {
	States     []string `json:"states"`
	State      string   `json:"state"`
	Codec      string   `json:"codec"`
	FramesSent int      `json:"framesSent"`
	LiveStatus string   `json:"liveStatus"`
	Error      string   `json:"error"`
	Failed     bool     `json:"failed"`
	Log        []string `json:"log"`
}

// TestGoLiveInChromium is the whole way a phone goes live: the page over
// HTTPS with a self-signed certificate, Chromium's fake camera, the Go live
// button, WHIP to the node, H.264 and Opus samples at the sink, End.
func TestGoLiveInChromium(t *testing.T) {
	browsertest.Need(t)
	const key = "chromium-key"
	var (
		mu     sync.Mutex
		sinks  []*mediatest.Sink
		titles []string
		unpubs = make(chan error, 4)
	)
	wh, err := whip.New(whip.Config{
		Authorize: func(k string) error {
			if k != key {
				return errors.New("unknown key")
			}
			return nil
		},
		Publish: func(_ string, info whip.Info) (media.Sink, error) {
			mu.Lock()
			defer mu.Unlock()
			s := mediatest.NewSink()
			sinks, titles = append(sinks, s), append(titles, info.Title)
			return s, nil // the packager runs on what it recorded, below
		},
		Unpublish: func(_ string, err error) { unpubs <- err },
		SettingEngine: func(se *webrtc.SettingEngine) {
			se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		},
		Logger: mediatest.Logger(t, slog.LevelInfo),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	mux := http.NewServeMux()
	mux.Handle("/broadcast/", http.StripPrefix("/broadcast", New(Config{})))
	mux.Handle("/broadcast/whip", wh)
	mux.Handle("/broadcast/whip/", wh)
	cert, err := tlscert.Load(tlscert.Config{Dir: t.TempDir(), Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = cert.TLSConfig()
	srv.StartTLS()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) broadcastResult {
		t.Helper()
		out, err := browsertest.Run(ctx, t, "broadcast.mjs", args...)
		if err != nil {
			t.Fatal(err)
		}
		var res broadcastResult
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("broadcast.mjs printed %q: %v", out, err)
		}
		return res
	}

	shot := filepath.Join(t.TempDir(), "live.png")
	if dir := os.Getenv("PEERSCOPE_SCREENSHOTS"); dir != "" {
		shot = filepath.Join(dir, "broadcaster-live.png")
	}
	res := run("--url", srv.URL+"/broadcast/#key="+key, "--seconds", "4", "--title", "Live from Chromium", "--screenshot", shot)
	if res.Failed || res.State != "ended" {
		t.Fatalf("page: %+v", res)
	}
	t.Logf("page states %v, codec %s, %d frames sent, status while live %q", res.States, res.Codec, res.FramesSent, res.LiveStatus)
	if !strings.EqualFold(res.Codec, "video/H264") {
		t.Errorf("the page sent %q, want video/H264", res.Codec)
	}
	select {
	case err := <-unpubs:
		if err != nil {
			t.Errorf("Unpublish after End: %v, want nil (the page's DELETE)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session did not end after End")
	}

	mu.Lock()
	sink, title := sinks[0], titles[0]
	mu.Unlock()
	if title != "Live from Chromium" {
		t.Errorf("title %q", title)
	}
	tracks, samples := sink.Snapshot()
	if len(tracks) != 2 || tracks[0].Codec != media.H264 || tracks[1].Codec != media.Opus || len(tracks[0].SPS) == 0 || len(tracks[0].PPS) == 0 {
		t.Fatalf("tracks %+v", tracks)
	}
	var video, audio, keys int
	last := map[int]time.Duration{}
	for i, s := range samples {
		if prev, ok := last[s.Track]; ok && s.PTS < prev {
			t.Fatalf("sample %d: track %d PTS %v after %v", i, s.Track, s.PTS, prev)
		}
		last[s.Track] = s.PTS
		if s.Track == tracks[0].ID {
			video++
			if s.Keyframe {
				keys++
			}
		} else {
			audio++
		}
	}
	// The CMAF packager takes the session's output as it came.
	var parts, independent int
	pkg, err := cmaf.New(cmaf.Config{}, func(o cmaf.Output) error {
		if o.Init == nil {
			parts++
			if o.Part.Independent {
				independent++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pkg.Tracks(tracks); err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := pkg.Sample(s); err != nil {
			t.Fatalf("packager: %v", err)
		}
	}
	if err := pkg.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the CMAF packager cut %d parts, %d independent", parts, independent)
	if parts < 10 || independent < 2 {
		t.Errorf("the CMAF packager cut %d parts (%d independent) from 4 s", parts, independent)
	}
	t.Logf("sink: %d video samples (%d keyframes), %d Opus packets, last video PTS %v", video, keys, audio, last[1])
	if !samples[0].Keyframe || samples[0].Track != tracks[0].ID {
		t.Error("the first sample is not the video keyframe")
	}
	if video < 40 || audio < 100 || keys < 2 {
		t.Errorf("after 4 s live: %d video samples, %d keyframes, %d audio; want ≥40, ≥2, ≥100", video, keys, audio)
	}

	// A wrong key: the page says so and never goes live.
	res = run("--url", srv.URL+"/broadcast/?key=wrong", "--expect-error")
	if slicesContains(res.States, "live") || !strings.Contains(res.Error, "stream key was refused") {
		t.Errorf("wrong key: %+v", res)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
