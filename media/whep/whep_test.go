package whep_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media/internal/mediatest"
	"github.com/peerscope/peerscope/media/whep"
)

func newServer(t *testing.T, cfg whep.Config) (*whep.Server, *httptest.Server) {
	t.Helper()
	se := whep.LoopbackSettingEngine()
	cfg.SettingEngine = &se
	srv, err := whep.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/whep/", http.StripPrefix("/live/whep", srv))
	mux.Handle("/live/whep", http.StripPrefix("/live/whep", srv))
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts
}

// client is a pion WHEP client on loopback.
type client struct {
	pc       *webrtc.PeerConnection
	location string
	audioHdr string

	mu        sync.Mutex
	nalus     map[byte]int // NALU type → count
	firstIDR  time.Duration
	spsBefore bool // an SPS came before the first IDR
	frames    int  // video RTP packets with the marker bit
	audioPkts int
	lastVideo time.Time
}

func dial(t *testing.T, url string) (*client, *http.Response) {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := whep.LoopbackSettingEngine()
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := &client{pc: pc, nalus: map[byte]int{}}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var depack codecs.H264Packet
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			c.mu.Lock()
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				c.audioPkts++
				c.mu.Unlock()
				continue
			}
			c.lastVideo = time.Now()
			if pkt.Marker {
				c.frames++
			}
			if au, err := depack.Unmarshal(pkt.Payload); err == nil {
				for _, n := range bytes.Split(au, []byte{0, 0, 0, 1}) {
					if len(n) == 0 {
						continue
					}
					typ := n[0] & 0x1f
					if typ == 5 && c.nalus[5] == 0 {
						c.firstIDR = time.Since(start)
						c.spsBefore = c.nalus[7] > 0 && c.nalus[8] > 0
					}
					c.nalus[typ]++
				}
			}
			c.mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nil, resp
	}
	c.location, c.audioHdr = resp.Header.Get("Location"), resp.Header.Get(whep.AudioHeader)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	return c, resp
}

func TestPlay(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	for _, name := range []string{"opus", "aac", "opus-private"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			audio, private := strings.CutSuffix(name, "-private")
			stream := mediatest.Generate(t, mediatest.Options{Seconds: 12, Audio: audio})
			cfg := whep.Config{}
			push := func(c *chunk.Chunk) *chunk.Chunk { return c }
			var seal *mediatest.Sealing
			if private {
				// A private broadcast's parts reach the server sealed;
				// the session opens each as it sends it.
				seal = mediatest.NewSealing(t)
				cfg.Opener = seal
				push = func(c *chunk.Chunk) *chunk.Chunk { return seal.Seal(t, c) }
			}
			srv, ts := newServer(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Joined 3 s in: 15 parts at once, then live. The keyframe is
			// at 2 s, so the session starts from the GOP cache.
			fed := make(chan struct{})
			go func() {
				defer close(fed)
				stream.Feed(ctx, func(c *chunk.Chunk) {
					if err := srv.Push(push(c)); err != nil && ctx.Err() == nil {
						t.Errorf("push %d: %v", c.Seq, err)
					}
				}, 15, true)
			}()
			// The feed ends before the subtest does: a push that fails as
			// the server closes must not report to a test already over
			// (a panic, "Fail in goroutine after TestPlay/opus has
			// completed", seen once in CI).
			defer func() { cancel(); <-fed }()
			var c *client
			for deadline := time.Now().Add(5 * time.Second); ; {
				var resp *http.Response
				c, resp = dial(t, ts.URL+"/live/whep")
				if c != nil {
					break
				}
				if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
					t.Fatalf("POST: %s", resp.Status)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.HasPrefix(c.location, "/live/whep/") {
				t.Fatalf("Location %q", c.location)
			}
			wantAudio := map[string]string{"opus": "opus", "aac": "none; codec=aac"}[audio]
			if c.audioHdr != wantAudio {
				t.Fatalf("%s: %q, want %q", whep.AudioHeader, c.audioHdr, wantAudio)
			}
			// The GOP sent at once and about 3 s live (the stream goes
			// on 9 s after the join: the session is not ended yet).
			testutil.WaitFor(t, 8*time.Second, "a keyframe, 80 frames and (Opus) 100 audio packets", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.nalus[5] > 0 && c.frames >= 80 && (audio != "opus" || c.audioPkts >= 100)
			})

			c.mu.Lock()
			t.Logf("first IDR after %v; NALU types %v; %d frames, %d audio packets", c.firstIDR, c.nalus, c.frames, c.audioPkts)
			if !c.spsBefore {
				t.Errorf("no SPS/PPS before the first IDR: %v", c.nalus)
			}
			if audio == "aac" && c.audioPkts != 0 {
				t.Errorf("%d audio packets for an AAC broadcast", c.audioPkts)
			}
			c.mu.Unlock()
			if private {
				// The init segment, the GOP sent at once (5 parts), and live parts.
				if n := seal.Opened.Load(); n < 10 {
					t.Errorf("%d parts opened", n)
				}
			}

			// DELETE ends the session.
			req, _ := http.NewRequest(http.MethodDelete, ts.URL+c.location, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("DELETE: %v %v", resp.Status, err)
			}
			resp.Body.Close()
			if n := srv.Sessions(); n != 0 {
				t.Fatalf("%d sessions after DELETE", n)
			}
			resp, _ = http.DefaultClient.Do(req)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("second DELETE: %s", resp.Status)
			}
			resp.Body.Close()
		})
	}
}

func TestRequests(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// Cleanups run last-in first-out: this one runs after the server, the
	// HTTP test server and the clients are closed.
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
	stream := mediatest.Generate(t, mediatest.Options{Seconds: 4})
	srv, ts := newServer(t, whep.Config{MaxSessions: 1})
	url := ts.URL + "/live/whep"

	// Not started: 503 with Retry-After.
	resp, err := http.Post(url, "application/sdp", strings.NewReader("v=0"))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the start: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	for _, c := range stream.Chunks("b", time.Now(), false)[:6] {
		srv.Push(c)
	}
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"POST", "", "text/plain", "v=0", http.StatusUnsupportedMediaType},
		{"POST", "", "application/sdp", "not sdp", http.StatusBadRequest},
		{"POST", "", "application/sdp", strings.Repeat("a", 70<<10), http.StatusRequestEntityTooLarge},
		{"GET", "", "", "", http.StatusMethodNotAllowed},
		{"DELETE", "/nope", "", "", http.StatusNotFound},
		{"PATCH", "/nope", "application/trickle-ice-sdpfrag", "", http.StatusMethodNotAllowed},
		{"OPTIONS", "", "", "", http.StatusNoContent},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.want)
		}
	}

	// One session at most.
	c, resp := dial(t, url)
	if c == nil {
		t.Fatalf("first session: %s", resp.Status)
	}
	if c2, resp := dial(t, url); c2 != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second session: %s", resp.Status)
	}
	// Close ends the session, and leaves no goroutine (checked on return).
	srv.Close()
	c.pc.Close()
	if err := srv.Push(&chunk.Chunk{Seq: 9}); err == nil {
		t.Fatal("Push after Close")
	}
}

// A session that reads nothing never holds up Push.
func TestSlowSessionDoesNotBlock(t *testing.T) {
	stream := mediatest.Generate(t, mediatest.Options{Seconds: 4})
	srv, ts := newServer(t, whep.Config{SessionQueue: 1})
	chunks := stream.Chunks("b", time.Now(), false)
	srv.Push(chunks[0])
	srv.Push(chunks[1])
	c, resp := dial(t, ts.URL+"/live/whep")
	if c == nil {
		t.Fatalf("%s", resp.Status)
	}
	var connected atomic.Bool
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			connected.Store(true)
		}
	})
	for !connected.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	parts := chunks[1:]
	n := 0
	for i := 0; i < 50; i++ {
		for j, ch := range parts {
			if i == 0 && j == 0 {
				continue
			}
			ch2 := *ch
			ch2.Seq = uint64(i*len(parts) + j)
			srv.Push(&ch2)
			n++
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d pushes took %v", n, d)
	}
}

// clientFrom returns an HTTP client whose connections come from a given
// loopback address (127.0.0.0/8 is all loopback on Linux): another client,
// as far as the server can tell.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// offer returns an SDP offer of a receive-only pion client.
func offer(t *testing.T) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := whep.LoopbackSettingEngine()
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// TestSessionsPerClient: one client (an address) that posts sixteen offers
// at once gets four sessions and 429 for the rest; a browser at another
// address still gets one, and Clients counts each client's sessions.
// (Before, the sixteen took every session of the node, sixteen times the
// stream's upload, and the next browser was refused.)
func TestSessionsPerClient(t *testing.T) {
	stream := mediatest.Generate(t, mediatest.Options{Seconds: 4})
	var changed atomic.Int64 // OnClients calls: sessions opened and ended
	srv, ts := newServer(t, whep.Config{ConnectTimeout: time.Minute, OnClients: func() { changed.Add(1) }})
	url := ts.URL + "/live/whep"
	for _, c := range stream.Chunks("b", time.Now(), false)[:6] {
		srv.Push(c)
	}
	attacker := clientFrom(t, "127.0.0.2")
	sdp := offer(t)
	codes := make(chan int, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			resp, err := attacker.Post(url, "application/sdp", strings.NewReader(sdp))
			if err != nil {
				t.Error(err)
				codes <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusCreated] != 4 || got[http.StatusTooManyRequests] != 12 {
		t.Fatalf("sixteen offers from one address: %v, want 4 × 201 and 12 × 429", got)
	}
	c, resp := dial(t, url)
	if c == nil {
		t.Fatalf("a browser at another address: %s", resp.Status)
	}
	if cl := srv.Clients(); len(cl) != 2 || cl["127.0.0.2"] != 4 || cl["127.0.0.1"] != 1 {
		t.Fatalf("Clients() = %v", cl)
	}
	// OnClients was told of each session opened, not of those refused,
	// and of one that ends.
	if n := changed.Load(); n != 5 {
		t.Fatalf("OnClients called %d times for 5 sessions opened", n)
	}
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+c.location, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if cl := srv.Clients(); len(cl) != 1 || changed.Load() != 6 {
		t.Fatalf("after a session ended: Clients() = %v, OnClients called %d times, want 6", cl, changed.Load())
	}
}

// TestUnpackOnlyForSessions: a node nobody watches over WHEP does not parse
// the parts it relays (it was 5.5 % of a relaying viewer's CPU). A part
// that does not unpack is refused when a session first sends it, not on
// arrival, and the session goes on.
func TestUnpackOnlyForSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	logs := &testutil.Buffer{}
	srv, ts := newServer(t, whep.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	stream := mediatest.Generate(t, mediatest.Options{Seconds: 3})
	last := len(stream.Parts) - 1
	if stream.Parts[last].Independent {
		t.Fatal("the stream's last part is a keyframe: pick another to break")
	}
	stream.Parts[last].Payload = []byte("not an fMP4 part") // in the GOP a session starts from
	stream.Feed(t.Context(), func(c *chunk.Chunk) {
		if err := srv.Push(c); err != nil {
			t.Errorf("push %d: %v", c.Seq, err)
		}
	}, len(stream.Parts), false)
	if strings.Contains(logs.String(), "part refused") {
		t.Fatalf("a part was unpacked with no session open:\n%s", logs)
	}
	c, resp := dial(t, ts.URL+"/live/whep")
	if c == nil {
		t.Fatalf("POST: %s", resp.Status)
	}
	testutil.WaitFor(t, 10*time.Second, "the broken part refused as the session sends it", func() bool {
		return strings.Contains(logs.String(), "part refused")
	})
	testutil.WaitFor(t, 10*time.Second, "frames before it", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.nalus[5] > 0 && c.frames > 0
	})
	if n := strings.Count(logs.String(), "part refused"); n != 1 {
		t.Errorf("refused %d times, want once:\n%s", n, logs)
	}
}
