package rtmp

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkSamples checks what every healthy session must look like.
func checkSamples(t *testing.T, tracks []media.Track, samples []media.Sample) {
	t.Helper()
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	ids := map[int]media.Track{}
	for _, tr := range tracks {
		ids[tr.ID] = tr
	}
	first := samples[0]
	if !ids[first.Track].IsVideo() || !first.Keyframe || first.DTS != 0 {
		t.Errorf("first sample: track %d keyframe %v DTS %v; want the video keyframe at DTS 0", first.Track, first.Keyframe, first.DTS)
	}
	last := map[int]time.Duration{}
	for i, s := range samples {
		if _, ok := ids[s.Track]; !ok {
			t.Fatalf("sample %d on unknown track %d", i, s.Track)
		}
		if prev, ok := last[s.Track]; ok && s.DTS < prev {
			t.Fatalf("sample %d: track %d DTS %v after %v", i, s.Track, s.DTS, prev)
		}
		last[s.Track] = s.DTS
		if s.PTS < s.DTS {
			t.Fatalf("sample %d: PTS %v < DTS %v", i, s.PTS, s.DTS)
		}
		if s.Wallclock.IsZero() {
			t.Fatalf("sample %d: no wallclock", i)
		}
		if ids[s.Track].IsVideo() {
			if len(s.NALUs) == 0 {
				t.Fatalf("sample %d: video without NALUs", i)
			}
			if s.Keyframe && !hasNALU(s.NALUs, 7) {
				t.Fatalf("sample %d: keyframe without SPS in band", i)
			}
		} else if len(s.Data) == 0 || !s.Keyframe {
			t.Fatalf("sample %d: audio without data or not a sync sample", i)
		}
	}
}

func hasNALU(au [][]byte, typ byte) bool {
	for _, n := range au {
		if len(n) > 0 && n[0]&0x1f == typ {
			return true
		}
	}
	return false
}

func TestPublishGoClient(t *testing.T) {
	h := newHarness(t, nil)
	f := loadFixture(t)
	start := time.Now()
	p, err := dialH264AAC(ctxT(t), f, h.url(h.key))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.send(f, 0, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	<-h.published
	if !h.srv.Live(h.key) {
		t.Error("Live(key) = false while publishing")
	}
	sink := h.sink(0)
	sink.WaitSamples(t, 40+120, 5*time.Second) // 3 s: 45 pictures, ~129 AAC frames
	p.c.Close()                                // the gortmplib client just closes the socket
	if err := <-h.ended; err == nil {
		t.Error("Unpublish(nil) for a publisher that vanished without ending its stream")
	}

	tracks, samples := sink.Snapshot()
	if len(tracks) != 2 || tracks[0].Codec != media.H264 || tracks[1].Codec != media.AAC {
		t.Fatalf("tracks %+v", tracks)
	}
	if string(tracks[0].SPS) != string(f.sps) || string(tracks[0].PPS) != string(f.pps) {
		t.Error("track SPS/PPS differ from the stream's")
	}
	if tracks[1].ClockRate != 44100 || tracks[1].ChannelCount != 1 || len(tracks[1].AudioConfig) < 2 {
		t.Errorf("AAC track %+v", tracks[1])
	}
	checkSamples(t, tracks, samples)
	keys := 0
	for _, s := range samples {
		if s.Track == 1 && s.Keyframe {
			if off := (s.DTS + 5*time.Millisecond) % time.Second; off > 10*time.Millisecond {
				t.Errorf("keyframe at %v, want one a second", s.DTS)
			}
			keys++
		}
		if s.Wallclock.Before(start) || s.Wallclock.After(time.Now()) {
			t.Fatalf("wallclock %v outside the test", s.Wallclock)
		}
	}
	if keys < 3 {
		t.Errorf("%d keyframes in 3 s, want 3 or 4", keys)
	}
	if sink.Err() != nil {
		t.Error(sink.Err())
	}
}

func TestRefusals(t *testing.T) {
	h := newHarness(t, nil)
	f := loadFixture(t)

	// A wrong key and a URL without one never reach Publish.
	for _, u := range []string{h.url("wrong"), "rtmp://" + h.addr + "/live", "rtmp://" + h.addr + "/other/" + h.key} {
		if p, err := dialH264AAC(ctxT(t), f, u); err == nil {
			p.c.Close()
			t.Errorf("%s: accepted", u)
		}
	}

	// A second publisher on a live key is refused; the first goes on.
	first, err := dialH264AAC(ctxT(t), f, h.url(h.key))
	if err != nil {
		t.Fatal(err)
	}
	defer first.c.Close()
	if err := first.send(f, 0, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-h.published
	if p, err := dialH264AAC(ctxT(t), f, h.url(h.key)); err == nil {
		p.c.Close()
		t.Error("a second publisher on a live key was accepted")
	} else {
		t.Logf("second publisher: %v", err)
	}
	if err := first.send(f, 2500*time.Millisecond, 3*time.Second); err != nil {
		t.Fatalf("first publisher cut off by the second: %v", err)
	}
	h.sink(0).WaitSamples(t, 40, 5*time.Second)

	// Unsupported codecs are refused once the tracks are known (after
	// the two seconds gortmplib looks at the stream).
	vp9, err := dialPublisher(ctxT(t), h.url(h.key+"-vp9"), &gortmplib.Track{Codec: &codecs.VP9{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 80 {
		ts := time.Duration(i) * 40 * time.Millisecond
		if err := vp9.w.WriteVP9(vp9.video, ts, []byte{0x82, 0x49, 0x83, 0x42, 0x00}); err != nil {
			break
		}
	}
	vp9.c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	for err == nil {
		_, err = vp9.c.Read()
	}
	vp9.c.Close()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("a VP9 publisher was not cut off")
	}
	if len(h.published) != 0 {
		t.Error("a VP9 stream reached Publish")
	}
}

func TestPlayRefused(t *testing.T) {
	h := newHarness(t, nil)
	u, _ := urlParse(h.url(h.key))
	c := &gortmplib.Client{URL: u, Publish: false}
	if err := c.Initialize(ctxT(t)); err == nil {
		c.Close()
		t.Fatal("a player was accepted")
	} else {
		t.Logf("player: %v", err)
	}
}

// TestGarbage throws at the listener what the internet will: random bytes,
// a handshake cut short, a publisher that goes silent mid-stream and one
// that drops its connection. Each costs one connection; a real publisher
// still gets through after, and Close leaves no goroutine (TestMain).
func TestGarbage(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.HandshakeTimeout = 500 * time.Millisecond
		c.ReadTimeout = 500 * time.Millisecond
	})
	f := loadFixture(t)

	junk := make([]byte, 64<<10)
	rand.Read(junk)
	junk3 := append([]byte{3}, junk...) // a valid version byte, then noise
	for name, payload := range map[string][]byte{
		"random":        junk,
		"version+noise": junk3,
		"truncated":     append([]byte{3}, junk[:700]...),
		"nothing":       nil,
	} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		// The server must close on us (error or timeout), not hang.
		buf := make([]byte, 4096)
		var rerr error
		for rerr == nil {
			_, rerr = c.Read(buf)
		}
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			t.Errorf("%s: server kept the connection open", name)
		}
		c.Close()
	}

	// Silent mid-stream: the session ends with ErrTimeout.
	p, err := dialH264AAC(ctxT(t), f, h.url(h.key))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.send(f, 0, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-h.published
	select {
	case err := <-h.ended:
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("silent publisher ended with %v, want ErrTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent publisher was never cut off")
	}
	p.c.Close()

	// Dropped mid-stream.
	p, err = dialH264AAC(ctxT(t), f, h.url(h.key))
	if err != nil {
		t.Fatal(err)
	}
	p.send(f, 0, 2500*time.Millisecond)
	<-h.published
	p.c.Close()
	if err := <-h.ended; !errors.Is(err, media.ErrBadInput) {
		t.Errorf("dropped publisher ended with %v", err)
	}

	// And the listener still serves.
	p, err = dialH264AAC(ctxT(t), f, h.url(h.key))
	if err != nil {
		t.Fatal(err)
	}
	defer p.c.Close()
	if err := p.send(f, 0, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-h.published
	h.sink(2).WaitSamples(t, 30, 5*time.Second)
}

func TestNewChecksConfig(t *testing.T) {
	ok := func(string) error { return nil }
	pub := func(string) (media.Sink, error) { return mediatest.NewSink(), nil }
	for name, cfg := range map[string]Config{
		"no Authorize": {Publish: pub},
		"no Publish":   {Authorize: ok},
		"slash in App": {Authorize: ok, Publish: pub, App: "a/b"},
		"negative":     {Authorize: ok, Publish: pub, ReadTimeout: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	s, err := New(Config{Authorize: ok, Publish: pub})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // twice is fine
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

// TestHandshakesPerClient: one client that opens every connection the
// server takes and stays silent in the handshake holds four of them; the
// rest are closed at once, and an encoder at another address publishes.
// (Before, the silent client held all 64 slots for the handshake timeout,
// and the encoder's connection was closed on arrival.)
func TestHandshakesPerClient(t *testing.T) {
	h := newHarness(t, nil) // 64 connections, 10 s handshakes
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	var closed atomic.Int32
	for range 64 {
		c, err := d.DialContext(ctxT(t), "tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				closed.Add(1)
			}
		}()
	}
	testutil.WaitFor(t, 5*time.Second, "60 of the silent client's connections closed", func() bool { return closed.Load() == 60 })
	f := loadFixture(t)
	p, err := dialH264AAC(ctxT(t), f, h.url(h.key))
	if err != nil {
		t.Fatalf("the encoder, while a client holds its handshakes: %v", err)
	}
	defer p.c.Close()
	if err := p.send(f, 0, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	<-h.published
}
