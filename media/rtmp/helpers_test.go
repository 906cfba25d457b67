package rtmp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/internal/mediatest"
)

// harness runs a Server on loopback with one accepted key.
type harness struct {
	srv  *Server
	addr string
	key  string

	mu        sync.Mutex
	sinks     []*mediatest.Sink
	wrap      func(*mediatest.Sink) media.Sink // what Publish returns, when set
	published chan string
	ended     chan error
}

func newHarness(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	h := &harness{key: "s3cret-key", published: make(chan string, 8), ended: make(chan error, 8)}
	cfg := Config{
		Authorize: func(key string) error {
			if !strings.HasPrefix(key, h.key) {
				return errors.New("unknown key")
			}
			return nil
		},
		Publish: func(key string) (media.Sink, error) {
			s := mediatest.NewSink()
			h.mu.Lock()
			h.sinks = append(h.sinks, s)
			wrap := h.wrap
			h.mu.Unlock()
			h.published <- key
			if wrap != nil {
				return wrap(s), nil
			}
			return s, nil
		},
		Unpublish: func(key string, err error) { h.ended <- err },
		Logger:    mediatest.Logger(t, slog.LevelDebug),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	h.srv, h.addr = srv, ln.Addr().String()
	return h
}

func (h *harness) sink(i int) *mediatest.Sink {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sinks[i]
}

func (h *harness) url(key string) string { return "rtmp://" + h.addr + "/live/" + key }

// fixture is a short H.264 (baseline, 15 fps, a keyframe a second) and
// AAC (44.1 kHz) clip, made once with ffmpeg (see testdata/README).
type fixture struct {
	sps, pps []byte
	aus      [][][]byte // access units in order, 15 per second
	aac      *mpeg4audio.AudioSpecificConfig
	aacAUs   [][]byte // 1024 samples each
}

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	raw, err := os.ReadFile("testdata/testsrc.h264")
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	var cur [][]byte
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			f.sps = n
		case h264.NALUTypePPS:
			f.pps = n
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		}
		cur = append(cur, n)
		if typ := h264.NALUType(n[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			f.aus = append(f.aus, cur) // one slice per picture in this fixture
			cur = nil
		}
	}
	rawAAC, err := os.ReadFile("testdata/sine.aac")
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(rawAAC); err != nil {
		t.Fatal(err)
	}
	f.aac = &mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	for _, p := range pkts {
		f.aacAUs = append(f.aacAUs, p.AU)
	}
	return f
}

// publisher is an RTMP encoder in Go (gortmplib's client).
type publisher struct {
	c     *gortmplib.Client
	w     *gortmplib.Writer
	video *gortmplib.Track
	audio *gortmplib.Track
}

func dialPublisher(ctx context.Context, rawURL string, tracks ...*gortmplib.Track) (*publisher, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(ctx); err != nil {
		return nil, err
	}
	w := &gortmplib.Writer{Conn: c, Tracks: tracks}
	if err := w.Initialize(); err != nil {
		c.Close()
		return nil, err
	}
	p := &publisher{c: c, w: w}
	for _, tr := range tracks {
		if tr.Codec.IsVideo() {
			p.video = tr
		} else {
			p.audio = tr
		}
	}
	return p, nil
}

func dialH264AAC(ctx context.Context, f *fixture, rawURL string) (*publisher, error) {
	return dialPublisher(ctx, rawURL,
		&gortmplib.Track{Codec: &codecs.H264{SPS: f.sps, PPS: f.pps}},
		&gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: f.aac}})
}

// send writes the fixture's media from from to to (as media time),
// interleaved in DTS order, as fast as the socket takes it.
func (p *publisher) send(f *fixture, from, to time.Duration) error {
	const frame = time.Second / 15
	aacDur := time.Duration(1024) * time.Second / time.Duration(f.aac.SampleRate)
	vi, ai := int(from/frame), int(from/aacDur)
	for {
		vt, at := time.Duration(vi)*frame, time.Duration(ai)*aacDur
		if vt >= to && at >= to {
			return nil
		}
		if vt <= at {
			au := f.aus[vi%len(f.aus)]
			if err := p.w.WriteH264(p.video, vt, vt, au); err != nil {
				return err
			}
			vi++
		} else {
			if err := p.w.WriteMPEG4Audio(p.audio, at, f.aacAUs[ai%len(f.aacAUs)]); err != nil {
				return err
			}
			ai++
		}
	}
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }
