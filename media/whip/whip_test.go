package whip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loopbackOnly keeps a test's ICE on 127.0.0.1.
func loopbackOnly(se *webrtc.SettingEngine) {
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
}

func count(samples []media.Sample, track int, key bool) int {
	n := 0
	for _, s := range samples {
		if s.Track == track && (!key || s.Keyframe) {
			n++
		}
	}
	return n
}

// endpoint is a Handler behind an httptest server, accepting one key.
// waitHeard waits for the node to have heard from the session that holds
// the endpoint's key. A client's side says connected a moment before the
// node's callback does; an offer posted in between finds a session that
// never connected and replaces it (CI, twice: 201 where 409 was wanted).
func (e *endpoint) waitHeard(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "the node to hear from the publisher", func() bool {
		e.h.mu.Lock()
		defer e.h.mu.Unlock()
		s := e.h.live[e.key]
		return s != nil && s.heardAt.Load() != 0
	})
}

type endpoint struct {
	h   *Handler
	srv *httptest.Server
	url string
	key string

	mu     sync.Mutex
	sinks  []*mediatest.Sink
	infos  []Info
	ended  chan error
	pubErr error
}

func newEndpoint(t *testing.T, tweak func(*Config)) *endpoint {
	t.Helper()
	e := &endpoint{key: "whip-key-1", ended: make(chan error, 8)}
	cfg := Config{
		Authorize: func(k string) error {
			if !strings.HasPrefix(k, e.key) {
				return errors.New("unknown key")
			}
			return nil
		},
		Publish: func(_ string, info Info) (media.Sink, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.pubErr != nil {
				return nil, e.pubErr
			}
			s := mediatest.NewSink()
			e.sinks = append(e.sinks, s)
			e.infos = append(e.infos, info)
			return s, nil
		},
		Unpublish:     func(_ string, err error) { e.ended <- err },
		SettingEngine: loopbackOnly,
		Logger:        mediatest.Logger(t, slog.LevelDebug),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/b/whip", h)
	mux.Handle("/b/whip/", h)
	e.h, e.srv = h, httptest.NewServer(mux)
	e.url = e.srv.URL + "/b/whip"
	t.Cleanup(func() {
		e.srv.Close()
		h.Close()
	})
	return e
}

func (e *endpoint) sink(i int) *mediatest.Sink {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sinks[i]
}

// post sends an offer and returns the response with its body read.
func post(t *testing.T, url, key, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// fixtureAUs reads testdata/testsrc.h264 (2 s, 15 fps, a keyframe every
// 15 frames, SPS and PPS before each) as Annex-B access units.
func fixtureAUs(t testing.TB) (aus [][][]byte) {
	raw, err := os.ReadFile("testdata/testsrc.h264")
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	var cur [][]byte
	for _, n := range nalus {
		cur = append(cur, n)
		if typ := n[0] & 0x1f; typ == 1 || typ == 5 {
			aus = append(aus, cur)
			cur = nil
		}
	}
	return aus
}

// client is a WHIP publisher made with pion, as OBS or a browser would be.
type client struct {
	pc       *webrtc.PeerConnection
	video    *webrtc.TrackLocalStaticSample
	audio    *webrtc.TrackLocalStaticSample
	location string
	plis     chan struct{}
}

// newClient offers the given video codecs (H.264 42e01f unless told) and
// Opus, and returns the client with its offer made but not sent.
func newClient(t *testing.T, videoCodecs ...webrtc.RTPCodecCapability) (*client, string) {
	t.Helper()
	return newClientOn(t, nil, videoCodecs...)
}

// newClientOn is newClient with its ICE on conn (nil: its own sockets).
func newClientOn(t *testing.T, conn net.PacketConn, videoCodecs ...webrtc.RTPCodecCapability) (*client, string) {
	t.Helper()
	if len(videoCodecs) == 0 {
		videoCodecs = []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}
	}
	m := &webrtc.MediaEngine{}
	for i, c := range videoCodecs {
		c.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: webrtc.PayloadType(96 + i)}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	opus := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opus, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	loopbackOnly(&se)
	if conn != nil {
		mux := webrtc.NewICEUDPMux(nil, conn)
		t.Cleanup(func() { mux.Close() })
		se.SetICEUDPMux(mux)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{pc: pc, plis: make(chan struct{}, 16)}
	t.Cleanup(func() { pc.Close() })
	c.video, _ = webrtc.NewTrackLocalStaticSample(videoCodecs[0], "video", "peerscope-test")
	c.audio, _ = webrtc.NewTrackLocalStaticSample(opus, "audio", "peerscope-test")
	for _, tr := range []*webrtc.TrackLocalStaticSample{c.video, c.audio} {
		tx, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		sender := tx.Sender()
		go func() {
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						select {
						case c.plis <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return c, pc.LocalDescription().SDP
}

// publish sends the offer and applies the answer.
func (c *client) publish(t *testing.T, url, key string) {
	t.Helper()
	resp, body := post(t, url, key, "application/sdp", c.pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s: %s", resp.Status, body)
	}
	c.location = resp.Header.Get("Location")
	connected := make(chan struct{})
	var once sync.Once
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	// Media written before DTLS is up is dropped, as a real sender's would
	// be: wait, so the test knows which frame comes first.
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("never connected")
	}
}

// stream sends the fixture's frames paced at speed× real time, with 20 ms
// Opus packets alongside, for the given number of frames.
func (c *client) stream(ctx context.Context, aus [][][]byte, frames int, speed float64) error {
	const frame = time.Second / 15
	tick := time.NewTicker(time.Duration(float64(frame) / speed))
	defer tick.Stop()
	opus := bytes.Repeat([]byte{0xfc, 0xff, 0xfe}, 20) // content does not matter to transport
	for i := 0; i < frames; i++ {
		var annexB []byte
		for _, n := range aus[i%len(aus)] {
			annexB = append(annexB, 0, 0, 0, 1)
			annexB = append(annexB, n...)
		}
		if err := c.video.WriteSample(pionmedia.Sample{Data: annexB, Duration: frame}); err != nil {
			return err
		}
		for range 3 { // 60 ms of audio per 66.7 ms frame: close enough
			if err := c.audio.WriteSample(pionmedia.Sample{Data: opus, Duration: 20 * time.Millisecond}); err != nil {
				return err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *client) delete(t *testing.T, base string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, base+c.location, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPublish: a pion client publishes H.264 and Opus; the sink gets the
// tracks at the first keyframe, then samples with the very NAL units the
// client sent, keyframes detected once a GOP, PTS rising; DELETE ends it
// cleanly.
func TestPublish(t *testing.T) {
	e := newEndpoint(t, nil)
	aus := fixtureAUs(t)
	c, _ := newClient(t)
	c.publish(t, e.url+"?title=My%20first%20%0Abroadcast", e.key)
	e.mu.Lock()
	title := e.infos[0].Title
	e.mu.Unlock()
	if got := title; got != "My first \nbroadcast" { // passed on as sent: the node cleans it
		t.Errorf("title %q", got)
	}
	if !strings.HasPrefix(c.location, "/b/whip/") || len(c.location) != len("/b/whip/")+32 {
		t.Fatalf("Location %q", c.location)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go c.stream(ctx, aus, 45, 2) // 3 s of media in 1.5 s

	sink := e.sink(0)
	samples := sink.WaitFor(t, 10*time.Second, "3 keyframes", func(s []media.Sample) bool { return count(s, videoTrackID, true) >= 3 })
	tracks, _ := sink.Snapshot()
	if len(tracks) != 2 || tracks[0].Codec != media.H264 || tracks[1].Codec != media.Opus {
		t.Fatalf("tracks %+v", tracks)
	}
	if !bytes.Equal(tracks[0].SPS, aus[0][0]) || !bytes.Equal(tracks[0].PPS, aus[0][1]) {
		t.Error("track SPS/PPS differ from the stream's")
	}
	if tracks[1].ClockRate != 48000 || tracks[1].ChannelCount != 2 {
		t.Errorf("Opus track %+v", tracks[1])
	}
	checkSamples(t, samples, aus)

	if code := c.delete(t, e.srv.URL); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	if err := <-e.ended; err != nil {
		t.Errorf("Unpublish after DELETE: %v, want nil", err)
	}
	if e.h.Live(e.key) {
		t.Error("still live after DELETE")
	}
	if code := c.delete(t, e.srv.URL); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	if sink.Err() != nil {
		t.Error(sink.Err())
	}
}

// checkSamples checks the video samples carry the fixture's pictures in
// order from a keyframe, with a keyframe every 15 frames and PTS steps of
// one frame; audio PTS rise.
func checkSamples(t *testing.T, samples []media.Sample, aus [][][]byte) {
	t.Helper()
	if samples[0].Track != videoTrackID || !samples[0].Keyframe || samples[0].PTS != 0 {
		t.Fatalf("first sample %+v; want the video keyframe at 0", samples[0])
	}
	var vi int
	var lastA time.Duration = -1
	var lastV time.Duration
	for _, s := range samples {
		if s.Track == audioTrackID {
			if s.PTS < lastA || len(s.Data) == 0 || !s.Keyframe {
				t.Fatalf("audio sample %+v after PTS %v", s, lastA)
			}
			lastA = s.PTS
			continue
		}
		want := aus[vi%len(aus)]
		if s.Keyframe != (vi%15 == 0) {
			t.Fatalf("video sample %d: keyframe %v", vi, s.Keyframe)
		}
		if vi > 0 {
			if step := s.PTS - lastV; step < 66*time.Millisecond || step > 67*time.Millisecond {
				t.Fatalf("video sample %d: PTS step %v, want 1/15 s", vi, step)
			}
		}
		lastV = s.PTS
		if len(s.NALUs) != len(want) {
			t.Fatalf("video sample %d: %d NALUs, want %d", vi, len(s.NALUs), len(want))
		}
		for j := range want {
			if !bytes.Equal(s.NALUs[j], want[j]) {
				t.Fatalf("video sample %d NALU %d differs from what was sent", vi, j)
			}
		}
		if s.PTS != s.DTS || s.Wallclock.IsZero() || s.Wallclock.After(time.Now()) {
			t.Fatalf("video sample %d: PTS %v DTS %v wallclock %v", vi, s.PTS, s.DTS, s.Wallclock)
		}
		vi++
	}
	if lastA < 0 {
		t.Error("no audio samples")
	}
}

// TestKeyframeRequests: the session asks for a keyframe when the video
// track starts and whenever the node asks (RequestKeyframe); with the
// default interval it would also ask every 2 s.
func TestKeyframeRequests(t *testing.T) {
	e := newEndpoint(t, func(c *Config) { c.KeyframeInterval = -1 })
	c, _ := newClient(t)
	c.publish(t, e.url, e.key)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go c.stream(ctx, fixtureAUs(t), 30, 1)
	select {
	case <-c.plis:
	case <-time.After(5 * time.Second):
		t.Fatal("no PLI when the video track started")
	}
	time.Sleep(minPLIGap) // requests closer than that are merged
	if !e.h.RequestKeyframe(e.key) {
		t.Fatal("RequestKeyframe: key not live")
	}
	select {
	case <-c.plis:
	case <-time.After(3 * time.Second):
		t.Fatal("no PLI after RequestKeyframe")
	}
	if e.h.RequestKeyframe("not-live") {
		t.Error("RequestKeyframe on a key that is not live reported true")
	}
	e.h.Close()
	if err := <-e.ended; !errors.Is(err, ErrClosed) {
		t.Errorf("Unpublish after Close: %v, want ErrClosed", err)
	}
}

// TestRefusals covers every way an offer is turned away, with the status
// and the plain words a person would need.
func TestRefusals(t *testing.T) {
	e := newEndpoint(t, nil)
	_, h264Offer := newClient(t)
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	_, vp8Offer := newClient(t, vp8)

	for _, tc := range []struct {
		name, key, ct, body string
		code                int
		says                string
	}{
		{"VP8 only", e.key, "application/sdp", vp8Offer, http.StatusNotAcceptable, "needs H.264"},
		{"Chromium without H.264", e.key, "application/sdp", chromeLikeOffer(false), http.StatusNotAcceptable, "only VP8, VP9, AV1 video"},
		{"garbage SDP", e.key, "application/sdp", "this is not SDP", http.StatusBadRequest, "malformed SDP"},
		{"no key", "", "application/sdp", h264Offer, http.StatusUnauthorized, "missing stream key"},
		{"wrong key", "nope", "application/sdp", h264Offer, http.StatusUnauthorized, "stream key refused"},
		{"not SDP", e.key, "application/json", "{}", http.StatusUnsupportedMediaType, "application/sdp"},
	} {
		resp, body := post(t, e.url, tc.key, tc.ct, tc.body)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %s %q; want %d saying %q", tc.name, resp.Status, body, tc.code, tc.says)
		}
	}

	// A second publisher on a live key: 409.
	first, _ := newClient(t)
	first.publish(t, e.url, e.key)
	e.waitHeard(t)
	second, offer := newClient(t)
	resp, body := post(t, e.url, e.key, "application/sdp", offer)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("second publisher: %s %q, want 409", resp.Status, body)
	}
	second.pc.Close()

	// The node refusing the stream: 503, and the key stays free.
	e.mu.Lock()
	e.pubErr = errors.New("no room")
	e.mu.Unlock()
	_, offer = newClient(t)
	if resp, body := post(t, e.url, e.key+"-2", "application/sdp", offer); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("node refusal: %s %q, want 503", resp.Status, body)
	}
	if e.h.Live(e.key + "-2") {
		t.Error("a refused key stays reserved")
	}

	// PATCH (trickle) and other methods; CORS preflight.
	for method, want := range map[string]int{http.MethodPatch: 405, http.MethodPut: 405, http.MethodOptions: 204} {
		req, _ := http.NewRequest(method, e.url+"/whatever", nil)
		req.Header.Set("Origin", "https://example.test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d (CORS %q), want %d", method, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), want)
		}
	}
	first.pc.Close()
}

// TestAnswerPrefersH264: a Chromium-shaped offer (VP8 first, H.264 among
// others) is answered with H.264 only, constrained baseline or baseline.
func TestAnswerPrefersH264(t *testing.T) {
	e := newEndpoint(t, func(c *Config) { c.FirstKeyframeTimeout = time.Second })
	// A real pion offer that lists VP8 before H.264.
	c, offer := newClient(t, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"})
	resp, answer := post(t, e.url, e.key, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s: %s", resp.Status, answer)
	}
	video := answer[strings.Index(answer, "m=video"):]
	if strings.Contains(video, "VP8") || !strings.Contains(video, "H264/90000") || !strings.Contains(video, "profile-level-id=42001f") {
		t.Errorf("answer's video section:\n%s", video)
	}
	if !strings.Contains(answer, "a=candidate:") || !strings.Contains(answer, "a=end-of-candidates") {
		t.Error("answer without gathered candidates")
	}
	c.pc.Close()
	// Never connected, never sent a keyframe: the session gives up.
	select {
	case err := <-e.ended:
		if !errors.Is(err, ErrNoKeyframe) && !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Unpublish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a session that never connected was never ended")
	}
}

// TestVanishedPublisher: a second publisher on a live key is told the
// truth (409: another publisher is live on this broadcast); once the first
// goes away without a DELETE (its PeerConnection closed, as a phone that
// lost the network or a killed tab), its session ends as ErrConnectionLost
// within MediaTimeout and a quarter, and a new publisher is taken.
func TestVanishedPublisher(t *testing.T) {
	const silence = time.Second
	e := newEndpoint(t, func(c *Config) { c.MediaTimeout = silence })
	aus := fixtureAUs(t)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	link := &testutil.Cuttable{PacketConn: udp}
	first, _ := newClientOn(t, link)
	first.publish(t, e.url, e.key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		_ = first.stream(ctx, aus, 1<<20, 1)
	}()
	e.sink(0).WaitFor(t, 10*time.Second, "the first publisher's keyframe", func(s []media.Sample) bool { return count(s, videoTrackID, true) >= 1 })

	second, offer := newClient(t)
	resp, body := post(t, e.url, e.key, "application/sdp", offer)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "another publisher is live on this broadcast") {
		t.Fatalf("second publisher: %s %q, want 409 saying another publisher is live", resp.Status, body)
	}
	second.pc.Close()

	link.Cut.Store(true) // the phone's network is gone: nothing more reaches the node,
	cancel()             // not even the DTLS close of the PeerConnection closed below
	<-streamed
	first.pc.Close() // no DELETE
	// Noticed within MediaTimeout and a quarter (the check's period), plus
	// room for a busy machine; ICE alone would take about 15 s.
	bound := silence + silence/4 + 4*time.Second
	testutil.WaitFor(t, bound, "the vanished publisher's key to be free", func() bool { return !e.h.Live(e.key) })
	select {
	case err := <-e.ended:
		if !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Unpublish: %v, want ErrConnectionLost", err)
		}
	default:
		t.Error("the key is free but Unpublish was not called")
	}
	third, _ := newClient(t)
	third.publish(t, e.url, e.key) // 201, connected
	third.pc.Close()
}

// TestRetryBeforeConnect: a publisher whose first offer never connected
// (a phone page reloaded, an answer lost) posts again with the same key.
// Before, the first session held the key until FirstKeyframeTimeout (15 s)
// and every retry was answered 409; now the retry replaces it at once
// (Unpublish: ErrReplaced), while a session that connected is still
// protected from a second publisher (409).
func TestRetryBeforeConnect(t *testing.T) {
	e := newEndpoint(t, nil)
	first, offer := newClient(t)
	resp, body := post(t, e.url, e.key, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first offer: %s %q", resp.Status, body)
	}
	first.pc.Close() // the answer is never applied: no ICE, no DTLS
	if !e.h.Live(e.key) {
		t.Fatal("the first offer does not hold the key")
	}

	retry, _ := newClient(t)
	retry.publish(t, e.url, e.key) // 201 and connected, or fails the test
	e.waitHeard(t)
	select {
	case err := <-e.ended:
		if !errors.Is(err, ErrReplaced) {
			t.Errorf("the first session's Unpublish: %v, want ErrReplaced", err)
		}
	default:
		t.Error("the first session was not ended")
	}

	third, offer := newClient(t)
	resp, body = post(t, e.url, e.key, "application/sdp", offer)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("a second publisher while the retry is connected: %s %q, want 409", resp.Status, body)
	}
	third.pc.Close()
	retry.pc.Close()
}
