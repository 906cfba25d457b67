package node_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
)

// whipPublisher is a WHIP publisher made with pion, as OBS would be: it
// plays the sample clip's video in real time, looping, over a UDP socket
// whose sending the test can cut (a phone that lost its network).
type whipPublisher struct {
	pc     *webrtc.PeerConnection
	link   *testutil.Cuttable
	cancel context.CancelFunc
	done   chan struct{}
}

// offerWHIP makes a pion PeerConnection sending H.264 on its own
// testutil.Cuttable socket and posts its offer to url with key; it returns the
// connection, its video track and socket, and the answer's status and
// body.
func offerWHIP(t *testing.T, url, key string) (*webrtc.PeerConnection, *webrtc.TrackLocalStaticSample, *testutil.Cuttable, int, string) {
	t.Helper()
	h264 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: h264, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	link := &testutil.Cuttable{PacketConn: udp}
	mux := webrtc.NewICEUDPMux(nil, link)
	t.Cleanup(func() { _ = mux.Close() })
	se := webrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEUDPMux(mux)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	video, err := webrtc.NewTrackLocalStaticSample(h264, "video", "peerscope-test")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	go func() { // RTCP must be read
		for {
			if _, _, err := tx.Sender().ReadRTCP(); err != nil {
				return
			}
		}
	}()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return pc, video, link, resp.StatusCode, string(body)
}

// publishWHIP goes live on url with key and plays the sample clip's video
// in real time until stop (or the test's end).
func publishWHIP(t *testing.T, url, key string) *whipPublisher {
	t.Helper()
	open := make(chan struct{})
	close(open)
	return publishWHIPGated(t, url, key, open)
}

// publishWHIPGated is publishWHIP with the media held back until gate
// closes: the publisher is connected, and sends nothing.
func publishWHIPGated(t *testing.T, url, key string, gate <-chan struct{}) *whipPublisher {
	t.Helper()
	pc, video, link, status, answer := offerWHIP(t, url, key)
	if status != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %q", status, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	src, err := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), ingest.WithLoop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &whipPublisher{pc: pc, link: link, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		select {
		case <-gate:
		case <-ctx.Done():
			return
		}
		_ = src.Run(ctx, &trackSink{video: video})
	}()
	t.Cleanup(p.stop)
	return p
}

// stop ends the media (not the connection).
func (p *whipPublisher) stop() {
	p.cancel()
	<-p.done
}

// vanish is a phone losing its network: nothing more reaches the node,
// not even the close of the PeerConnection, and no DELETE is sent.
func (p *whipPublisher) vanish() {
	p.link.Cut.Store(true)
	p.stop()
	_ = p.pc.Close()
}

// trackSink writes a source's video to a pion track as Annex-B, SPS and
// PPS before every keyframe.
type trackSink struct {
	video    *webrtc.TrackLocalStaticSample
	track    media.Track
	last     time.Duration
	started  bool
	annexB   []byte
	sps, pps []byte
}

func (s *trackSink) Tracks(tracks []media.Track) error {
	for _, tr := range tracks {
		if tr.Codec == media.H264 {
			s.track, s.sps, s.pps = tr, tr.SPS, tr.PPS
		}
	}
	return nil
}

func (s *trackSink) Sample(smp media.Sample) error {
	if smp.Track != s.track.ID {
		return nil
	}
	d := 33 * time.Millisecond
	if s.started && smp.DTS > s.last {
		d = smp.DTS - s.last
	}
	s.last, s.started = smp.DTS, true
	s.annexB = s.annexB[:0]
	nalus := smp.NALUs
	if smp.Keyframe {
		nalus = append([][]byte{s.sps, s.pps}, nalus...)
	}
	for _, n := range nalus {
		s.annexB = append(s.annexB, 0, 0, 0, 1)
		s.annexB = append(s.annexB, n...)
	}
	return s.video.WriteSample(pionmedia.Sample{Data: s.annexB, Duration: d})
}
