package whep

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/peerscope/peerscope/media"
)

// rtpPayloadSize keeps packets under any path MTU with room for SRTP and
// header extensions.
const rtpPayloadSize = 1200

// session is one browser's WebRTC connection. The Server's goroutine
// offers it units (never blocking); its own goroutine sends them.
type session struct {
	srv    *Server
	id     string
	pc     *webrtc.PeerConnection
	client string // internal/clientip's name of who asked

	video *output // nil when the offer took no video
	audio *output // nil without Opus audio

	ch      chan *unit
	needKey atomic.Bool // a unit was dropped: skip to the next keyframe

	// guarded by srv.mu
	active  bool // ICE is up and the sender goroutine runs
	counted bool // registered: holds one of its client's sessions

	pace  pacer  // owned by run
	plain []byte // owned by run: the sealed part being sent, opened

	done      chan struct{}
	closeOnce sync.Once
	timer     *time.Timer // ConnectTimeout
}

// output is one sending track.
type output struct {
	track     *webrtc.TrackLocalStaticRTP
	sender    *webrtc.RTPSender
	clock     int64
	base      uint32 // random RTP timestamp origin
	seq       uint16
	payloader *codecs.H264Payloader // video only

	packets, octets uint32
	lastTS          uint32
	lastWall        time.Time
	lastReport      time.Time
}

func (s *Server) newSession(r *http.Request, offer string, video, audio *media.Track) (*session, string, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	ss := &session{srv: s, id: newID(), pc: pc, ch: make(chan *unit, s.cfg.SessionQueue), done: make(chan struct{})}
	fail := func(err error) (*session, string, error) {
		pc.Close()
		return nil, "", err
	}
	if video != nil {
		capab := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID(video.SPS)}
		if ss.video, err = addOutput(pc, capab, "video", 90000); err != nil {
			return fail(err)
		}
		ss.video.payloader = &codecs.H264Payloader{}
	}
	if audio != nil && audio.Codec == media.Opus {
		capab := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		if ss.audio, err = addOutput(pc, capab, "audio", 48000); err != nil {
			return fail(err)
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("offer: %w", err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("answer: %w", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("answer: %w", err))
	}
	// Host candidates only: gathering takes milliseconds.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(errors.New("ICE gathering did not complete"))
	}
	// A transceiver the offer had no m-line for is left out of the answer.
	for _, o := range []**output{&ss.video, &ss.audio} {
		if *o != nil && !negotiated(pc, (*o).sender) {
			*o = nil
		}
	}
	if ss.video == nil && ss.audio == nil {
		return fail(errors.New("the offer receives neither H.264 video nor Opus audio"))
	}
	return ss, pc.LocalDescription().SDP, nil
}

func addOutput(pc *webrtc.PeerConnection, capab webrtc.RTPCodecCapability, kind string, clock int64) (*output, error) {
	track, err := webrtc.NewTrackLocalStaticRTP(capab, kind, "peerscope")
	if err != nil {
		return nil, err
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	return &output{
		track: track, sender: tr.Sender(), clock: clock,
		base: uint32(rnd[0])<<24 | uint32(rnd[1])<<16 | uint32(rnd[2])<<8 | uint32(rnd[3]),
		seq:  uint16(rnd[4])<<8 | uint16(rnd[5]),
	}, nil
}

func negotiated(pc *webrtc.PeerConnection, sender *webrtc.RTPSender) bool {
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			return tr.Mid() != "" && len(sender.GetParameters().Codecs) > 0
		}
	}
	return false
}

// profileLevelID is the SPS's profile_idc, constraint flags and level_idc
// in hex, as SDP wants them (42e01f when there is no SPS).
func profileLevelID(sps []byte) string {
	if len(sps) < 4 {
		return "42e01f"
	}
	return fmt.Sprintf("%02x%02x%02x", sps[1], sps[2], sps[3])
}

// watch starts the session's lifecycle: activation when ICE connects, the
// end when it fails, RTCP reading, and the connect timeout. It reports
// false, starting nothing, once the server is closed.
func (ss *session) watch() bool {
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	ss.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			ss.activate()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			ss.close()
		}
	})
	for _, o := range []*output{ss.video, ss.audio} {
		if o == nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Reading drives the interceptors (NACKs); keyframe requests
			// cannot be honoured (there is no encoder here): the stream's
			// own keyframes come every few seconds.
			buf := make([]byte, 1500)
			for {
				if _, _, err := o.sender.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	ss.timer = time.AfterFunc(s.cfg.ConnectTimeout, func() {
		s.mu.Lock()
		active := ss.active
		s.mu.Unlock()
		if !active {
			s.log.Info("session did not connect", "session", ss.id)
			ss.close()
		}
	})
	return true
}

func (ss *session) activate() {
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.active || s.closed || s.sessions[ss.id] != ss {
		return
	}
	select {
	case <-ss.done:
		return
	default:
	}
	ss.active = true
	start := append([]*unit(nil), s.gop...)
	if len(start) == 0 {
		ss.needKey.Store(true)
	}
	s.wg.Add(1)
	go ss.run(start)
	s.log.Info("session connected", "session", ss.id, "gop_parts", len(start))
}

// offer queues a unit for the session, or drops it (srv.mu held).
func (ss *session) offer(u *unit) {
	if !ss.active {
		return
	}
	select {
	case ss.ch <- u:
	default:
		ss.needKey.Store(true)
	}
}

func (ss *session) close() {
	ss.closeOnce.Do(func() {
		close(ss.done)
		ss.srv.mu.Lock()
		if ss.timer != nil {
			ss.timer.Stop()
		}
		_, registered := ss.srv.sessions[ss.id]
		delete(ss.srv.sessions, ss.id)
		if ss.counted {
			ss.counted = false
			ss.srv.leave(ss.client)
		}
		ss.srv.mu.Unlock()
		if registered {
			ss.srv.cfg.OnClients()
		}
		ss.pc.Close()
	})
}

// run sends the starting GOP at once (video only: old audio would only
// delay the start), then live units paced by their timestamps.
func (ss *session) run(start []*unit) {
	defer ss.srv.wg.Done()
	for _, u := range start {
		if !ss.send(u, true) {
			return
		}
	}
	for {
		select {
		case <-ss.done:
			return
		case u := <-ss.ch:
			if ss.needKey.Load() {
				if !u.independent {
					continue
				}
				ss.needKey.Store(false)
			}
			if !ss.send(u, false) {
				return
			}
			if u.end {
				// Let the last packets leave, then hang up: the page
				// sees the connection close and shows the end.
				select {
				case <-ss.done:
				case <-time.After(time.Second):
				}
				ss.close()
				return
			}
		}
	}
}

// pacing state, owned by run.
type pacer struct {
	anchored   bool
	anchorWall time.Time
	anchorDTS  time.Duration
}

// send writes one unit's samples; it reports false once the session is
// closed.
func (ss *session) send(u *unit, burst bool) bool {
	var samples []media.Sample
	switch {
	case u.sealed != nil:
		var ok bool
		if samples, ok = ss.open(u); !ok {
			ss.needKey.Store(true) // a decoder cannot go on without it
			return true
		}
	case u.plain != nil:
		var ok bool
		if samples, ok = u.unpacked(ss.srv.log); !ok {
			return true
		}
	}
	for i := range samples {
		smp := &samples[i]
		var o *output
		var t *media.Track
		switch {
		case u.video != nil && smp.Track == u.video.ID:
			o, t = ss.video, u.video
		case u.audio != nil && smp.Track == u.audio.ID && u.audio.Codec == media.Opus && !burst:
			o, t = ss.audio, u.audio
		}
		if o == nil {
			continue
		}
		if !burst && !ss.wait(smp.DTS) {
			return false
		}
		var err error
		if t.IsVideo() {
			err = o.writeVideo(smp, t)
		} else {
			err = o.writeAudio(smp)
		}
		if err != nil {
			ss.srv.log.Debug("write", "session", ss.id, "err", err)
		}
		o.report(ss.pc, smp)
	}
	select {
	case <-ss.done:
		return false
	default:
		return true
	}
}

// unpacked unpacks a public broadcast's unit, once for every session, and
// reports false for a part that does not unpack (said once).
func (u *unit) unpacked(log *slog.Logger) ([]media.Sample, bool) {
	u.once.Do(func() {
		fr, err := u.unpack.Unpack(u.plain.Payload, time.Unix(0, u.plain.Wallclock))
		if err != nil {
			log.Warn("part refused", "seq", u.plain.Seq, "err", err)
			u.refused = true
			return
		}
		u.samples = fr.Samples
	})
	return u.samples, !u.refused
}

// open opens a sealed unit into the session's buffer and unpacks it; the
// samples are good until the next open.
func (ss *session) open(u *unit) ([]media.Sample, bool) {
	plain, err := ss.srv.cfg.Opener.Open(ss.plain[:0], u.sealed)
	if err != nil {
		ss.srv.log.Warn("a part does not open", "session", ss.id, "seq", u.sealed.Seq, "err", err)
		return nil, false
	}
	ss.plain = plain
	fr, err := u.unpack.Unpack(plain, time.Unix(0, u.sealed.Wallclock))
	if err != nil {
		ss.srv.log.Warn("part refused", "session", ss.id, "seq", u.sealed.Seq, "err", err)
		return nil, false
	}
	return fr.Samples, true
}

// wait holds a sample until its time: samples leave spread as they were
// captured, not in bursts of a part, so the browser's jitter buffer stays
// small.
func (ss *session) wait(dts time.Duration) bool {
	p := &ss.pace
	now := time.Now()
	due := p.anchorWall.Add(dts - p.anchorDTS)
	if !p.anchored || due.Before(now.Add(-time.Second)) || due.After(now.Add(time.Second)) {
		p.anchored, p.anchorWall, p.anchorDTS = true, now, dts
		return true
	}
	d := due.Sub(now)
	if d <= time.Millisecond {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ss.done:
		return false
	case <-t.C:
		return true
	}
}

func (o *output) rtpTime(d time.Duration) uint32 {
	ticks := int64(d/time.Second)*o.clock + int64(d%time.Second)*o.clock/int64(time.Second)
	return o.base + uint32(ticks)
}

func (o *output) writeVideo(s *media.Sample, t *media.Track) error {
	nalus := s.NALUs
	if s.Keyframe && len(t.SPS) > 0 && len(t.PPS) > 0 {
		// A decoder joining here needs the parameter sets before the IDR.
		var sps, pps bool
		for _, n := range nalus {
			switch n[0] & 0x1f {
			case 7:
				sps = true
			case 8:
				pps = true
			}
		}
		if !sps || !pps {
			nalus = append([][]byte{t.SPS, t.PPS}, nalus...)
		}
	}
	size := 0
	for _, n := range nalus {
		size += 4 + len(n)
	}
	annexB := make([]byte, 0, size)
	for _, n := range nalus {
		annexB = append(annexB, 0, 0, 0, 1)
		annexB = append(annexB, n...)
	}
	ts := o.rtpTime(s.PTS)
	payloads := o.payloader.Payload(rtpPayloadSize, annexB)
	for i, p := range payloads {
		if err := o.write(ts, i == len(payloads)-1, p); err != nil {
			return err
		}
	}
	return nil
}

func (o *output) writeAudio(s *media.Sample) error {
	return o.write(o.rtpTime(s.PTS), false, s.Data)
}

func (o *output) write(ts uint32, marker bool, payload []byte) error {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, SequenceNumber: o.seq, Timestamp: ts}, Payload: payload}
	o.seq++
	o.packets++
	o.octets += uint32(len(payload))
	return o.track.WriteRTP(&pkt)
}

// report sends an RTCP sender report about once a second, mapping RTP time
// to the capture wallclock of the sample just sent.
func (o *output) report(pc *webrtc.PeerConnection, s *media.Sample) {
	o.lastTS = o.rtpTime(s.PTS)
	o.lastWall = s.Wallclock.Add(s.PTS - s.DTS)
	if time.Since(o.lastReport) < time.Second || s.Wallclock.IsZero() {
		return
	}
	enc := o.sender.GetParameters().Encodings
	if len(enc) == 0 {
		return
	}
	o.lastReport = time.Now()
	pc.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{
		SSRC:        uint32(enc[0].SSRC),
		NTPTime:     ntpTime(o.lastWall),
		RTPTime:     o.lastTS,
		PacketCount: o.packets,
		OctetCount:  o.octets,
	}})
}

// ntpTime is t in NTP's 64-bit format (seconds since 1900, 32.32).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix()) + unixToNTP
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}
