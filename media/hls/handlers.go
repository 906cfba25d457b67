package hls

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// blocking is a parsed blocking-reload request.
type blocking struct {
	on      bool
	msn     uint64
	part    uint64
	hasPart bool
}

// parseBlocking reads _HLS_msn and _HLS_part strictly; other _HLS_
// directives (such as _HLS_skip, which this server does not offer) are
// refused, and other parameters (cache busters) are ignored.
func parseBlocking(q url.Values) (blocking, error) {
	var b blocking
	for k, vs := range q {
		if !strings.HasPrefix(k, "_HLS_") {
			continue
		}
		if len(vs) != 1 {
			return b, fmt.Errorf("%s given %d times", k, len(vs))
		}
		n, ok := number(vs[0], "")
		if !ok && k != "_HLS_skip" {
			return b, fmt.Errorf("%s=%q is not a number", k, vs[0])
		}
		switch k {
		case "_HLS_msn":
			b.on, b.msn = true, n
		case "_HLS_part":
			b.hasPart, b.part = true, n
		default:
			return b, fmt.Errorf("%s is not supported", k)
		}
	}
	if b.hasPart && !b.on {
		return b, fmt.Errorf("_HLS_part without _HLS_msn")
	}
	return b, nil
}

// statusClientGone marks a request whose client left while it waited:
// nothing is written.
const statusClientGone = 499

// await holds the request until ready (called with mu held) returns true,
// the request ends, the server closes or MaxBlock passes. It returns with mu
// held, reporting whether ready said yes.
func (s *Server) await(ctx context.Context, ready func() bool) (bool, int) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.tick()
		if s.closed {
			return false, http.StatusServiceUnavailable
		}
		if ready() {
			return true, 0
		}
		if timer == nil {
			timer = time.NewTimer(s.cfg.MaxBlock)
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			return false, statusClientGone
		case <-timer.C:
			s.mu.Lock()
			return false, http.StatusServiceUnavailable
		}
		s.mu.Lock()
	}
}

func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request) {
	b, err := parseBlocking(r.URL.Query())
	if err != nil {
		http.Error(w, "hls: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	tooFar := false
	ok, status := s.await(r.Context(), func() bool {
		if s.ended {
			return true
		}
		cur := s.current()
		if cur == nil {
			return false // nothing to list yet: wait for the first part
		}
		if !b.on {
			return true
		}
		if b.msn > cur.msn+2 {
			tooFar = true
			return true
		}
		switch {
		case b.msn < cur.msn:
			return true
		case b.msn > cur.msn:
			return false
		case b.hasPart:
			return b.part < uint64(len(cur.parts)) || cur.complete
		default:
			return cur.complete
		}
	})
	var body []byte
	if ok && !tooFar {
		body = s.playlist()
	}
	s.mu.Unlock()
	switch {
	case status == statusClientGone:
	case tooFar:
		http.Error(w, "hls: _HLS_msn is more than two segments ahead", http.StatusBadRequest)
	case !ok:
		http.Error(w, "hls: playlist not ready", status)
	default:
		h := w.Header()
		h.Set("Content-Type", "application/vnd.apple.mpegurl")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// playlist renders the media playlist (mu held), cached per version.
func (s *Server) playlist() []byte {
	if s.cache != nil && s.cacheVer == s.version {
		return s.cache
	}
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", int(s.cfg.TargetDuration/time.Second))
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.3f\n", (3 * s.partTarget).Seconds())
	fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%.3f\n", s.partTarget.Seconds())
	if len(s.segs) > 0 {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", s.segs[0].msn)
	}
	if s.discSeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", s.discSeq)
	}

	// Parts are listed for the segments within three target durations of
	// the live edge, as the spec asks; older ones only as segments.
	withParts := len(s.segs)
	var tail time.Duration
	for withParts > 0 && tail < 3*s.cfg.TargetDuration {
		withParts--
		tail += s.segs[withParts].dur
	}
	var prevInit *initSeg
	for i, sg := range s.segs {
		if sg.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if sg.init != prevInit {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"init/%d.mp4\"\n", sg.init.id)
			prevInit = sg.init
		}
		if len(sg.parts) > 0 {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", sg.parts[0].wall.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		if i >= withParts {
			for _, p := range sg.parts {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.5f,URI=\"part/%d.m4s\"", p.dur.Seconds(), p.seq)
				if p.independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if sg.complete {
			fmt.Fprintf(&b, "#EXTINF:%.5f,\nseg/%d.m4s\n", sg.dur.Seconds(), sg.msn)
		}
	}
	if s.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	} else if p := s.lastPart(); p != nil {
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/%d.m4s\"\n", p.seq+1)
	}
	s.cache, s.cacheVer = b.Bytes(), s.version
	return s.cache
}

func (s *Server) serveInit(w http.ResponseWriter, r *http.Request) {
	id, ok := number(r.PathValue("file"), ".mp4")
	if !ok {
		http.NotFound(w, r)
		return
	}
	var payload []byte
	s.mu.Lock()
	if s.init != nil && s.init.id == id {
		payload = s.init.payload
	}
	for _, sg := range s.segs {
		if sg.init.id == id {
			payload = sg.init.payload
		}
	}
	s.mu.Unlock()
	if payload == nil {
		http.NotFound(w, r)
		return
	}
	writeMedia(w, payload, time.Time{})
}

func (s *Server) servePart(w http.ResponseWriter, r *http.Request) {
	seq, ok := number(r.PathValue("file"), ".m4s")
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	var p *part
	ok, status := s.await(r.Context(), func() bool {
		if p = s.parts[seq]; p != nil {
			return true
		}
		// Only the hinted part (or the one after, for a player one reload
		// behind) is worth waiting for; anything else is not coming.
		last := s.lastPart()
		if s.ended || last == nil || seq <= last.seq || seq > last.seq+2 {
			return true
		}
		if next, started := s.q.Next(); started && seq < next {
			return true // given up in a gap
		}
		return false
	})
	s.mu.Unlock()
	switch {
	case status == statusClientGone:
	case !ok:
		http.Error(w, "hls: part not ready", status)
	case p == nil:
		http.NotFound(w, r)
	case p.sealed != nil:
		plain, err := s.open(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeMedia(w, plain, p.wall)
		s.release(plain)
	default:
		writeMedia(w, p.payload, p.wall)
	}
}

func (s *Server) serveSegment(w http.ResponseWriter, r *http.Request) {
	msn, ok := number(r.PathValue("file"), ".m4s")
	if !ok {
		http.NotFound(w, r)
		return
	}
	var parts []*part
	s.mu.Lock()
	for _, sg := range s.segs {
		if sg.msn == msn && sg.complete {
			parts = sg.parts
		}
	}
	s.mu.Unlock()
	if parts == nil {
		http.NotFound(w, r)
		return
	}
	n := 0
	for _, p := range parts {
		n += p.size
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "max-age=3600")
	h.Set("Content-Length", strconv.Itoa(n))
	if len(parts) > 0 {
		h.Set(WallclockHeader, strconv.FormatInt(parts[0].wall.UnixMilli(), 10))
	}
	for _, p := range parts {
		payload := p.payload
		if p.sealed != nil {
			// Cut short (the Content-Length is not met), the response
			// fails at the player, as it should.
			plain, err := s.open(p)
			if err != nil {
				return
			}
			payload = plain
		}
		_, err := w.Write(payload)
		if p.sealed != nil {
			s.release(payload)
		}
		if err != nil {
			return
		}
	}
}

func writeMedia(w http.ResponseWriter, payload []byte, wall time.Time) {
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "max-age=3600")
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	if !wall.IsZero() {
		h.Set(WallclockHeader, strconv.FormatInt(wall.UnixMilli(), 10))
	}
	w.Write(payload)
}
