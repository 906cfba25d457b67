package hls

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/fmp4"
	"github.com/peerscope/peerscope/media/internal/inorder"
)

// Errors.
var (
	// ErrClosed is returned by Push after Close.
	ErrClosed = errors.New("hls: server closed")
	// ErrBadConfig wraps every complaint about a Config.
	ErrBadConfig = errors.New("hls: bad config")
)

// WallclockHeader carries a part's capture time (Unix milliseconds) on part
// responses, so that a player can show its live latency exactly.
const WallclockHeader = "Peerscope-Wallclock"

// Config tunes a Server. The zero value gets the defaults.
type Config struct {
	// Window is how much media the playlist keeps (default 30 s).
	Window time.Duration
	// MaxBytes bounds the payload bytes held (default 64 MiB).
	MaxBytes int
	// TargetDuration is EXT-X-TARGETDURATION: a segment that reaches it is
	// cut at the next part even without a keyframe (default 4 s, whole
	// seconds).
	TargetDuration time.Duration
	// PartTarget is the least PART-TARGET announced; a longer part raises
	// it (default 200 ms).
	PartTarget time.Duration
	// GapWait is how long a missing chunk is waited for, while later ones
	// arrive, before it is given up (default 2 s).
	GapWait time.Duration
	// MaxBlock bounds how long a blocking request is held (default 3 ×
	// TargetDuration, as the HLS spec suggests); then it gets a 503.
	MaxBlock time.Duration
	// Opener opens a private broadcast's sealed parts when a player takes
	// them (nil: sealed chunks are refused). Each request opens its part
	// into a buffer the server reuses; no plaintext is kept.
	Opener media.Opener
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default: discard).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Window == 0 {
		c.Window = 30 * time.Second
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 64 << 20
	}
	if c.TargetDuration == 0 {
		c.TargetDuration = 4 * time.Second
	}
	if c.PartTarget == 0 {
		c.PartTarget = 200 * time.Millisecond
	}
	if c.GapWait == 0 {
		c.GapWait = 2 * time.Second
	}
	if c.MaxBlock == 0 {
		c.MaxBlock = 3 * c.TargetDuration
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.TargetDuration < time.Second || c.TargetDuration%time.Second != 0:
		return fmt.Errorf("%w: TargetDuration %v is not a whole number of seconds", ErrBadConfig, c.TargetDuration)
	case c.PartTarget < 0 || c.PartTarget > c.TargetDuration:
		return fmt.Errorf("%w: PartTarget %v", ErrBadConfig, c.PartTarget)
	case c.Window < 2*c.TargetDuration:
		return fmt.Errorf("%w: Window %v shorter than two target durations", ErrBadConfig, c.Window)
	case c.MaxBytes < chunk.MaxPayloadSize:
		return fmt.Errorf("%w: MaxBytes %d smaller than one chunk", ErrBadConfig, c.MaxBytes)
	case c.GapWait < 0 || c.MaxBlock < 0:
		return fmt.Errorf("%w: negative wait", ErrBadConfig)
	}
	return nil
}

type initSeg struct {
	id      uint64 // seq of the first part that uses it: init/{id}.mp4
	payload []byte
	unpack  *fmp4.Unpacker // made on demand, to measure parts without a Duration
}

type part struct {
	seq         uint64
	payload     []byte       // nil when sealed
	sealed      *chunk.Chunk // a private part, opened at each request
	size        int          // of the plaintext
	dur         time.Duration
	independent bool
	wall        time.Time
}

type segment struct {
	msn           uint64
	init          *initSeg
	discontinuity bool // EXT-X-DISCONTINUITY before it
	parts         []*part
	dur           time.Duration
	complete      bool
}

// Server serves one broadcast as LL-HLS. Its methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced at every change
	closed     bool
	q          *inorder.Queue
	init       *initSeg // in force for the next part
	gapNext    bool     // the next segment follows a gap
	segs       []*segment
	nextMSN    uint64
	discSeq    uint64 // EXT-X-DISCONTINUITY-SEQUENCE
	parts      map[uint64]*part
	bytes      int
	partTarget time.Duration
	ended      bool
	version    uint64 // bumped at every change; keys the playlist cache
	cache      []byte
	cacheVer   uint64

	bufs chan []byte // plaintext buffers for sealed parts, reused
}

// maxSpareBufs bounds the plaintext buffers kept for reuse (requests
// opening parts at the same moment).
const maxSpareBufs = 4

// NewServer returns a Server with nothing to serve yet.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		changed:    make(chan struct{}),
		q:          inorder.New(inorder.Config{MaxWait: cfg.GapWait}),
		parts:      map[uint64]*part{},
		partTarget: cfg.PartTarget,
		bufs:       make(chan []byte, maxSpareBufs),
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/index.m3u8", s.servePlaylist)
	s.mux.HandleFunc("/init/{file}", s.serveInit)
	s.mux.HandleFunc("/part/{file}", s.servePart)
	s.mux.HandleFunc("/seg/{file}", s.serveSegment)
	return s, nil
}

// Push hands the server one verified chunk of its broadcast, in any order;
// chunks it already has are ignored. The server keeps the payload (it must
// not change afterwards). It never blocks on a player. A sealed chunk needs
// Config.Opener.
func (s *Server) Push(c *chunk.Chunk) error {
	if c == nil {
		return nil
	}
	if len(c.Payload) > chunk.MaxPayloadSize {
		return fmt.Errorf("hls: chunk %d: payload of %d bytes", c.Seq, len(c.Payload))
	}
	c, _, err := media.Unseal(s.cfg.Opener, c)
	if err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	items := s.q.Push(s.cfg.Now(), c)
	s.apply(items)
	return nil
}

// tick gives up overdue gaps when no chunk comes to do it; called with mu
// held by requests.
func (s *Server) tick() {
	if !s.closed && !s.ended {
		s.apply(s.q.Tick(s.cfg.Now()))
	}
}

// Close releases every waiting request; later requests get 503.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.notify()
	}
	return nil
}

// Info is a summary for status pages.
type Info struct {
	Live      bool      // parts are being served and the end has not come
	Ended     bool      // the broadcast ended (EXT-X-ENDLIST)
	Segments  int       // segments in the window
	Bytes     int       // payload bytes held
	Wallclock time.Time // capture time of the newest part
}

// Info returns a summary of what is being served.
func (s *Server) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := Info{Ended: s.ended, Segments: len(s.segs), Bytes: s.bytes}
	if p := s.lastPart(); p != nil {
		in.Wallclock = p.wall
		in.Live = !s.ended
	}
	return in
}

func (s *Server) notify() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) current() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

func (s *Server) lastPart() *part {
	for i := len(s.segs) - 1; i >= 0; i-- {
		if ps := s.segs[i].parts; len(ps) > 0 {
			return ps[len(ps)-1]
		}
	}
	return nil
}

// apply adds released items to the playlist.
func (s *Server) apply(items []inorder.Item) {
	if len(items) == 0 {
		return
	}
	for _, it := range items {
		if it.Gap {
			s.closeSegment()
			s.gapNext = true
			s.log.Info("gap given up", "resume_seq", seqOf(it))
		}
		if it.NewInit || s.init == nil {
			s.closeSegment()
			s.init = &initSeg{payload: it.Init}
			if it.Chunk != nil {
				s.init.id = it.Chunk.Seq
			}
		}
		if it.Chunk != nil {
			s.addPart(it.Chunk)
		}
		if it.End {
			s.closeSegment()
			s.ended = true
		}
	}
	s.trim()
	s.notify()
}

func seqOf(it inorder.Item) uint64 {
	if it.Chunk == nil {
		return math.MaxUint64
	}
	return it.Chunk.Seq
}

func (s *Server) closeSegment() {
	if cur := s.current(); cur != nil {
		cur.complete = true
	}
}

func (s *Server) addPart(c *chunk.Chunk) {
	p := &part{seq: c.Seq, payload: c.Payload, size: len(c.Payload), independent: c.IsKeyframe(), wall: time.Unix(0, c.Wallclock)}
	if c.Epoch != 0 {
		p.payload, p.sealed, p.size = nil, c, s.cfg.Opener.PlainLen(c)
	}
	d := time.Duration(c.Duration)
	if d <= 0 {
		d = s.measure(p)
	}
	p.dur = d
	cur := s.current()
	if cur == nil || cur.complete || cur.init != s.init ||
		(p.independent && len(cur.parts) > 0) ||
		cur.dur+d > s.cfg.TargetDuration {
		if cur != nil {
			cur.complete = true
		}
		cur = &segment{msn: s.nextMSN, init: s.init, discontinuity: s.gapNext}
		if prev := s.current(); prev != nil && prev.init != s.init {
			cur.discontinuity = true
		}
		s.gapNext = false
		s.nextMSN++
		s.segs = append(s.segs, cur)
	}
	cur.parts = append(cur.parts, p)
	cur.dur += d
	s.parts[p.seq] = p
	s.bytes += p.size
	if d > s.partTarget {
		// PART-TARGET must not be less than any part; round up to the ms.
		s.partTarget = (d + time.Millisecond - 1).Truncate(time.Millisecond)
	}
}

// measure returns a part's duration from its boxes, for chunks that do not
// say (0 when it cannot be read).
func (s *Server) measure(p *part) time.Duration {
	payload := p.payload
	if p.sealed != nil {
		buf, err := s.open(p)
		if err != nil {
			return 0
		}
		defer s.release(buf)
		payload = buf
	}
	if s.init.unpack == nil {
		u, err := fmp4.NewUnpacker(s.init.payload)
		if err != nil {
			return 0
		}
		s.init.unpack = u
	}
	fr, err := s.init.unpack.Unpack(payload, time.Time{})
	if err != nil {
		return 0
	}
	return fr.Duration
}

// open returns a sealed part's plaintext in a buffer to give back with
// release.
func (s *Server) open(p *part) ([]byte, error) {
	var buf []byte
	select {
	case buf = <-s.bufs:
	default:
	}
	plain, err := s.cfg.Opener.Open(buf[:0], p.sealed)
	if err != nil {
		s.release(buf)
		s.log.Warn("a part does not open", "seq", p.seq, "err", err)
		return nil, fmt.Errorf("hls: part %d does not open", p.seq)
	}
	return plain, nil
}

// release keeps a buffer from open for the next, if there is room.
func (s *Server) release(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	select {
	case s.bufs <- buf[:0]:
	default:
	}
}

// trim drops the oldest segments beyond the window (always keeping the
// current one).
func (s *Server) trim() {
	total := time.Duration(0)
	for _, sg := range s.segs {
		total += sg.dur
	}
	for len(s.segs) > 1 && (total-s.segs[0].dur >= s.cfg.Window || s.bytes > s.cfg.MaxBytes) {
		old := s.segs[0]
		total -= old.dur
		for _, p := range old.parts {
			delete(s.parts, p.seq)
			s.bytes -= p.size
		}
		if old.discontinuity {
			s.discSeq++ // its tag leaves the playlist
		}
		s.segs[0] = nil
		s.segs = s.segs[1:]
	}
}

// ServeHTTP serves the playlist, init segments, parts and segments. Mount
// it with http.StripPrefix so that it sees "/index.m3u8" and so on.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", WallclockHeader)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// number parses "{n}{ext}" strictly: decimal digits, no sign, no leading
// zeros.
func number(file, ext string) (uint64, bool) {
	d, ok := strings.CutSuffix(file, ext)
	if !ok || d == "" || (len(d) > 1 && d[0] == '0') {
		return 0, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(d, 10, 64)
	return n, err == nil
}
