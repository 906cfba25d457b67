package whip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/peerscope/peerscope/media"
)

// Track IDs a WHIP session hands its sink.
const (
	videoTrackID = 1
	audioTrackID = 2
)

// minPLIGap spaces keyframe requests, whoever asks.
const minPLIGap = 500 * time.Millisecond

// session is one publisher: a PeerConnection whose track readers feed one
// goroutine (run) that owns the sink.
type session struct {
	id, key  string
	h        *Handler
	log      *slog.Logger
	pc       *webrtc.PeerConnection
	sink     media.Sink
	hasAudio bool
	t0       time.Time // the offer's arrival: the origin of raw timestamps

	ctx  context.Context
	stop context.CancelCauseFunc
	done chan struct{} // closed when run has cleaned up

	events    chan event
	wantKey   chan struct{} // RequestKeyframe, buffered 1
	videoSSRC atomic.Uint32
	// heardAt is when anything last came from the publisher (UnixNano of
	// Config.Now; 0 until it connected): what MediaTimeout is counted from.
	heardAt atomic.Int64

	mu        sync.Mutex // guards readers against Add after Wait
	closing   bool
	audioSeen bool
	readers   sync.WaitGroup
}

// event is what a track reader hands the session: one depacketized unit
// with its raw presentation time (since t0).
type event struct {
	video bool
	pts   time.Duration
	nalus [][]byte // video
	lost  bool     // video: this unit is damaged or follows a loss
	data  []byte   // audio
}

func (s *session) onTrack(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	mime := strings.ToLower(track.Codec().MimeType)
	log := s.log.With("track", mime, "ssrc", uint32(track.SSRC()))
	switch mime {
	case strings.ToLower(webrtc.MimeTypeH264):
		if !s.videoSSRC.CompareAndSwap(0, uint32(track.SSRC())) {
			// Simulcast layers or a second camera: one picture is carried.
			log.Warn("whip: ignoring a second video track (simulcast is not taken; send one layer)", "rid", track.RID())
			s.drain(track)
			break
		}
		s.readers.Add(1)
		go s.readVideo(track, log)
		s.requestKeyframe() // start with a keyframe at once
	case strings.ToLower(webrtc.MimeTypeOpus):
		if s.audioSeen {
			log.Warn("whip: ignoring a second audio track")
			s.drain(track)
			break
		}
		s.audioSeen = true
		s.readers.Add(1)
		go s.readAudio(track, log)
	default:
		log.Warn("whip: ignoring a track we did not ask for")
		s.drain(track)
	}
	// RTCP must be read for the interceptors (NACK, reports) to work.
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
			s.heard() // a sender whose camera is paused still reports
		}
	}()
}

// drain reads and drops a track's packets, so pion's buffers do not fill.
// Called with s.mu held.
func (s *session) drain(track *webrtc.TrackRemote) {
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		for {
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
			s.heard()
		}
	}()
}

// heard notes that something came from the publisher now.
func (s *session) heard() { s.heardAt.Store(s.h.cfg.Now().UnixNano()) }

// silentFor returns how long nothing has come from the publisher as of
// now, and false before it connected.
func (s *session) silentFor(now time.Time) (time.Duration, bool) {
	at := s.heardAt.Load()
	if at == 0 {
		return 0, false
	}
	return now.Sub(time.Unix(0, at)), true
}

func (s *session) send(ev event) bool {
	select {
	case s.events <- ev:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *session) readVideo(track *webrtc.TrackRemote, log *slog.Logger) {
	defer s.readers.Done()
	var (
		ro    = newReorder()
		dep   h264Depacketizer
		clock = mediaClock{rate: 90000}
		errs  int
	)
	for {
		p, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		now := s.h.cfg.Now()
		s.heardAt.Store(now.UnixNano())
		for _, p := range ro.push(p, now) {
			aus, err := dep.push(p)
			if err != nil {
				if errs++; errs <= 5 || errs%100 == 0 {
					log.Warn("whip: dropped an H.264 payload", "err", err, "count", errs)
				}
			}
			for _, au := range aus {
				if len(au.nalus) == 0 {
					continue
				}
				if !s.send(event{video: true, pts: clock.pts(au.ts, now, s.t0), nalus: au.nalus, lost: au.lost}) {
					return
				}
			}
		}
	}
}

func (s *session) readAudio(track *webrtc.TrackRemote, log *slog.Logger) {
	defer s.readers.Done()
	ro := newReorder()
	clock := mediaClock{rate: int64(track.Codec().ClockRate)}
	if clock.rate <= 0 {
		clock.rate = 48000
	}
	for {
		p, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		now := s.h.cfg.Now()
		s.heardAt.Store(now.UnixNano())
		for _, p := range ro.push(p, now) {
			if len(p.Payload) == 0 || len(p.Payload) > maxOpusPacket {
				continue
			}
			if !s.send(event{pts: clock.pts(p.Timestamp, now, s.t0), data: append([]byte(nil), p.Payload...)}) {
				return
			}
		}
	}
}

// mediaClock maps a track's RTP timestamps to time since the session's
// start: the first packet's arrival, plus the RTP time since it.
type mediaClock struct {
	rate  int64
	uw    unwrap
	first int64
	at    time.Duration
	set   bool
}

func (c *mediaClock) pts(ts uint32, now, t0 time.Time) time.Duration {
	ext := c.uw.extend(ts)
	if !c.set {
		c.first, c.at, c.set = ext, now.Sub(t0), true
	}
	d := ext - c.first
	return c.at + time.Duration(d/c.rate)*time.Second + time.Duration(d%c.rate)*time.Second/time.Duration(c.rate)
}

// requestKeyframe asks run to send a PLI; it never blocks.
func (s *session) requestKeyframe() {
	select {
	case s.wantKey <- struct{}{}:
	default:
	}
}

// run owns the sink: it starts the tracks on the first keyframe, hands on
// samples, asks for keyframes, and cleans up when the session ends.
func (s *session) run() {
	defer close(s.done)
	defer s.cleanup()

	tl := &timeline{hasAudio: s.hasAudio}
	var lastPLI time.Time
	pli := func(now time.Time) {
		if now.Sub(lastPLI) < minPLIGap {
			return
		}
		ssrc := s.videoSSRC.Load()
		if ssrc == 0 {
			return
		}
		lastPLI = now
		if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			s.log.Debug("whip: PLI not sent", "err", err)
		}
	}
	var tick <-chan time.Time
	if s.h.cfg.KeyframeInterval > 0 {
		t := time.NewTicker(s.h.cfg.KeyframeInterval)
		defer t.Stop()
		tick = t.C
	}
	firstKey := time.NewTimer(s.h.cfg.FirstKeyframeTimeout)
	defer firstKey.Stop()
	// A publisher that went away without a DELETE is noticed within
	// MediaTimeout and a quarter: its key is free again for its return.
	var silence <-chan time.Time
	if s.h.cfg.MediaTimeout > 0 {
		t := time.NewTicker(s.h.cfg.MediaTimeout / 4)
		defer t.Stop()
		silence = t.C
	}

	for {
		select {
		case <-s.ctx.Done():
			return
		case <-firstKey.C:
			if !tl.started {
				s.stop(fmt.Errorf("%w within %v of the offer (is the camera sending?)", ErrNoKeyframe, s.h.cfg.FirstKeyframeTimeout))
				return
			}
		case <-silence:
			if d, ok := s.silentFor(s.h.cfg.Now()); ok && d > s.h.cfg.MediaTimeout {
				s.stop(fmt.Errorf("%w: nothing from the publisher for %v", ErrConnectionLost, d.Round(time.Millisecond)))
				return
			}
		case <-s.wantKey:
			pli(s.h.cfg.Now())
		case <-tick:
			pli(s.h.cfg.Now())
		case ev := <-s.events:
			now := s.h.cfg.Now()
			out := tl.push(ev, now, s.t0)
			if out.needKey {
				pli(now)
			}
			if out.tracks != nil {
				s.log.Info("whip: first keyframe; publishing", "tracks", len(out.tracks))
				if err := s.sink.Tracks(out.tracks); err != nil {
					s.stop(fmt.Errorf("whip: sink refused the tracks: %w", err))
					return
				}
			}
			if out.ok {
				if err := s.sink.Sample(out.sample); err != nil {
					s.stop(fmt.Errorf("whip: sink: %w", err))
					return
				}
			}
		}
	}
}

// cleanup closes the PeerConnection, waits for the readers and tells the
// node.
func (s *session) cleanup() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.pc.Close()
	s.readers.Wait()
	cause := context.Cause(s.ctx)
	if errors.Is(cause, errDeleted) {
		cause = nil
	}
	if cause == nil {
		s.log.Info("whip: publisher ended the stream")
	} else {
		s.log.Warn("whip: session ended", "err", cause)
	}
	s.h.forget(s)
	if s.h.cfg.Unpublish != nil {
		s.h.cfg.Unpublish(s.key, cause)
	}
}

// errDeleted is the cause of a session ended by its DELETE: a clean end.
var errDeleted = errors.New("whip: ended by DELETE")

// timeline turns depacketized units into samples: nothing until the first
// keyframe that carries (or follows) an SPS and a PPS, timestamps rebased
// there; after a loss, video waits for the next keyframe and asks for one.
// Pure: no clock reads, no I/O.
type timeline struct {
	hasAudio bool
	started  bool
	base     time.Duration
	sps, pps []byte
	waitKey  bool
	last     [3]time.Duration // per track ID
}

type timelineOut struct {
	tracks  []media.Track // the first time only
	sample  media.Sample
	ok      bool
	needKey bool
}

func (t *timeline) push(ev event, now, t0 time.Time) (out timelineOut) {
	if !ev.video {
		if !t.started || ev.pts < t.base {
			return out
		}
		out.sample = media.Sample{Track: audioTrackID, Keyframe: true, Data: ev.data}
		return t.finish(out, ev.pts, now, t0)
	}
	sps, pps := paramSets(ev.nalus)
	if sps != nil {
		t.sps = sps
	}
	if pps != nil {
		t.pps = pps
	}
	key := isKeyframe(ev.nalus)
	switch {
	case ev.lost:
		t.waitKey = true
		out.needKey = true
		return out
	case !key && (!t.started || t.waitKey):
		out.needKey = true
		return out
	case key && (t.sps == nil || t.pps == nil):
		out.needKey = true // a keyframe we cannot decode yet
		return out
	}
	t.waitKey = false
	nalus := ev.nalus
	if key && (sps == nil || pps == nil) {
		var pre [][]byte
		if sps == nil {
			pre = append(pre, t.sps)
		}
		if pps == nil {
			pre = append(pre, t.pps)
		}
		nalus = append(pre, ev.nalus...)
	}
	if !t.started {
		t.started, t.base = true, ev.pts
		out.tracks = []media.Track{{ID: videoTrackID, Codec: media.H264, ClockRate: 90000, SPS: t.sps, PPS: t.pps}}
		if t.hasAudio {
			out.tracks = append(out.tracks, media.Track{ID: audioTrackID, Codec: media.Opus, ClockRate: 48000, ChannelCount: 2})
		}
	}
	out.sample = media.Sample{Track: videoTrackID, Keyframe: key, NALUs: nalus}
	return t.finish(out, ev.pts, now, t0)
}

func (t *timeline) finish(out timelineOut, rawPTS time.Duration, now, t0 time.Time) timelineOut {
	pts := rawPTS - t.base
	if pts < t.last[out.sample.Track] {
		return timelineOut{needKey: out.needKey, tracks: out.tracks}
	}
	t.last[out.sample.Track] = pts
	out.sample.PTS, out.sample.DTS = pts, pts
	out.sample.Wallclock = now
	if w := t0.Add(rawPTS); w.Before(now) {
		out.sample.Wallclock = w
	}
	out.ok = true
	return out
}
