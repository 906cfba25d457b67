package whep

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clientip"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/fmp4"
	"github.com/peerscope/peerscope/media/internal/inorder"
)

// Errors.
var (
	// ErrClosed is returned by Push after Close.
	ErrClosed = errors.New("whep: server closed")
	// ErrBadConfig wraps every complaint about a Config.
	ErrBadConfig = errors.New("whep: bad config")
)

// AudioHeader, on a 201 answer, says what audio the session carries: "opus",
// or "none; codec=aac" when the broadcast's audio cannot travel over WebRTC
// (play LL-HLS for sound), or "none" for a broadcast without audio.
const AudioHeader = "Peerscope-Audio"

// Config tunes a Server. The zero value gets the defaults.
type Config struct {
	// MaxSessions bounds the WebRTC sessions at once (default 16).
	MaxSessions int
	// MaxSessionsPerClient bounds the sessions of one client (an IPv4
	// address or an IPv6 /64, internal/clientip) at once, those being set
	// up included (default 4: a household, or a page reloaded before its
	// old session timed out). Past it a request is answered 429.
	MaxSessionsPerClient int
	// SessionQueue is how many parts may wait for a slow session before it
	// loses them and skips to the next keyframe (default 25, ~5 s).
	SessionQueue int
	// GapWait is how long a missing chunk is waited for (default 1 s: WebRTC
	// plays at the live edge, so a gap is given up sooner than in HLS).
	GapWait time.Duration
	// ConnectTimeout ends a session whose ICE does not connect (default 15 s).
	ConnectTimeout time.Duration
	// MaxGOP bounds the parts kept since the last keyframe for new sessions
	// (default 100, 20 s); beyond it new sessions wait for a keyframe.
	MaxGOP int
	// Opener opens a private broadcast's sealed parts (nil: sealed chunks
	// are refused). Each session opens a part when it sends it, into a
	// buffer of its own that it reuses; no plaintext is kept.
	Opener media.Opener
	// SettingEngine for pion (default: DefaultSettingEngine()).
	SettingEngine *webrtc.SettingEngine
	// Logger (default: discard).
	Logger *slog.Logger
	// OnClients, if set, is called after a session opens or ends (what
	// Clients returns has changed), with no lock held; it must not block.
	// The node counts its browsers then, instead of asking Clients at a
	// pace.
	OnClients func()
}

func (c *Config) setDefaults() error {
	if c.MaxSessions == 0 {
		c.MaxSessions = 16
	}
	if c.MaxSessionsPerClient == 0 {
		c.MaxSessionsPerClient = 4
	}
	if c.SessionQueue == 0 {
		c.SessionQueue = 25
	}
	if c.GapWait == 0 {
		c.GapWait = time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 15 * time.Second
	}
	if c.MaxGOP == 0 {
		c.MaxGOP = 100
	}
	if c.SettingEngine == nil {
		se := DefaultSettingEngine()
		c.SettingEngine = &se
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnClients == nil {
		c.OnClients = func() {}
	}
	if c.MaxSessions < 0 || c.MaxSessionsPerClient < 0 || c.SessionQueue < 1 || c.GapWait < 0 || c.ConnectTimeout < 0 || c.MaxGOP < 1 {
		return fmt.Errorf("%w: %+v", ErrBadConfig, *c)
	}
	return nil
}

// DefaultSettingEngine keeps ICE to host candidates (no STUN, no TURN, no
// mDNS), loopback included, over UDP: it needs no network beyond the
// machine's own interfaces, and a browser on another host reaches it through
// the node's address (its own candidates then show up as peer-reflexive).
func DefaultSettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	return se
}

// LoopbackSettingEngine is DefaultSettingEngine restricted to loopback
// addresses: for tests and for a player on the node's own machine.
func LoopbackSettingEngine() webrtc.SettingEngine {
	se := DefaultSettingEngine()
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return se
}

// unit is one part, shared by every session. A public broadcast's part is
// unpacked once, by the first session that sends it (a node nobody watches
// over WHEP never parses the fMP4 of what it relays); a private one's stays
// sealed, and each session opens it when it sends it.
type unit struct {
	plain       *chunk.Chunk // for a public broadcast
	once        sync.Once    // unpacks plain into samples
	samples     []media.Sample
	refused     bool // plain did not unpack
	sealed      *chunk.Chunk
	unpack      *fmp4.Unpacker // for plain and sealed
	independent bool
	video       *media.Track // nil without video
	audio       *media.Track // nil without audio
	end         bool         // the broadcast ends after this unit
}

// Server plays one broadcast over WHEP. Its methods are safe for concurrent
// use.
type Server struct {
	cfg Config
	log *slog.Logger
	api *webrtc.API

	mu       sync.Mutex
	closed   bool
	q        *inorder.Queue
	unpacker *fmp4.Unpacker
	video    *media.Track
	audio    *media.Track
	gop      []*unit // since the last keyframe; nil when unusable
	ended    bool
	sessions map[string]*session
	clients  map[string]int // sessions per client, those being set up included
	wg       sync.WaitGroup // session goroutines
}

// NewServer returns a Server with no broadcast to play yet.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for i, plid := range []string{"42e01f", "42001f", "4d001f", "64001f"} {
		err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: fb,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
			},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, err
		}
	}
	err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio)
	if err != nil {
		return nil, err
	}
	// Retransmit on NACK; no sender-report interceptor: sessions send their
	// own reports, stamped with capture time.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		api:      webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(*cfg.SettingEngine)),
		q:        inorder.New(inorder.Config{MaxWait: cfg.GapWait}),
		sessions: map[string]*session{},
		clients:  map[string]int{},
	}
	return s, nil
}

// Push hands the server one verified chunk, in any order. It never waits
// for a session: one too slow to keep its queue loses parts and restarts at
// the next keyframe.
func (s *Server) Push(c *chunk.Chunk) error {
	if c == nil {
		return nil
	}
	c, _, err := media.Unseal(s.cfg.Opener, c)
	if err != nil {
		return fmt.Errorf("whep: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, it := range s.q.Push(time.Now(), c) {
		s.apply(it)
	}
	return nil
}

// apply unpacks one released item and fans it out (mu held).
func (s *Server) apply(it inorder.Item) {
	if it.NewInit {
		u, err := fmp4.NewUnpacker(it.Init)
		if err != nil {
			s.log.Warn("init segment refused", "err", err)
			s.unpacker, s.video, s.audio, s.gop = nil, nil, nil, nil
		} else {
			s.unpacker, s.video, s.audio = u, nil, nil
			for _, t := range u.Tracks() {
				switch {
				case t.IsVideo() && s.video == nil:
					s.video = &t
				case !t.IsVideo() && s.audio == nil:
					s.audio = &t
				}
			}
		}
	}
	if it.Gap {
		s.gop = nil
	}
	u := &unit{video: s.video, audio: s.audio, end: it.End}
	switch {
	case it.Chunk != nil && s.unpacker != nil && it.Chunk.Epoch != 0:
		u.sealed, u.unpack, u.independent = it.Chunk, s.unpacker, it.Chunk.IsKeyframe()
	case it.Chunk != nil && s.unpacker != nil:
		u.plain, u.unpack, u.independent = it.Chunk, s.unpacker, it.Chunk.IsKeyframe()
	}
	switch {
	case u.independent:
		s.gop = append(s.gop[:0:0], u)
	case s.gop != nil && len(s.gop) < s.cfg.MaxGOP:
		s.gop = append(s.gop, u)
	default:
		s.gop = nil
	}
	if u.end {
		s.ended = true
		s.gop = nil
	}
	for _, ss := range s.sessions {
		ss.offer(u)
	}
}

// Sessions returns the number of sessions open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Clients returns the sessions open per client (internal/clientip's
// name: an IPv4 address, an IPv6 /64), for counting viewers by client.
func (s *Server) Clients() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.clients))
	for _, ss := range s.sessions {
		out[ss.client]++
	}
	return out
}

// admit takes one of a client's sessions, or reports that it has them all.
func (s *Server) admit(client string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[client] >= s.cfg.MaxSessionsPerClient {
		return false
	}
	s.clients[client]++
	return true
}

// leave gives a client's session back (mu held).
func (s *Server) leave(client string) {
	if s.clients[client]--; s.clients[client] <= 0 {
		delete(s.clients, client)
	}
}

// Close ends every session and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ss := make([]*session, 0, len(s.sessions))
	for _, x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	for _, x := range ss {
		x.close()
	}
	s.wg.Wait()
	return nil
}

// ServeHTTP answers WHEP requests. Mount it with http.StripPrefix, so that
// it sees "/" for the endpoint and "/{id}" for sessions.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, "+AudioHeader)
	id := strings.Trim(r.URL.Path, "/")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
		h.Set("Access-Control-Max-Age", "86400")
		if id == "" {
			h.Set("Accept-Post", "application/sdp")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch {
	case id == "" && r.Method == http.MethodPost:
		s.create(w, r)
	case id != "" && !strings.Contains(id, "/") && r.Method == http.MethodDelete:
		s.mu.Lock()
		ss := s.sessions[id]
		s.mu.Unlock()
		if ss == nil {
			http.NotFound(w, r)
			return
		}
		ss.close()
		w.WriteHeader(http.StatusOK)
	case id != "" && !strings.Contains(id, "/") && r.Method == http.MethodPatch:
		h.Set("Allow", "DELETE, OPTIONS")
		http.Error(w, "whep: trickle ICE is not supported; the answer has every candidate", http.StatusMethodNotAllowed)
	case id == "":
		h.Set("Allow", "POST, OPTIONS")
		http.Error(w, "whep: method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

// maxOffer bounds an SDP offer; browsers' are a few kilobytes.
const maxOffer = 64 << 10

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/sdp" {
		http.Error(w, "whep: the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
	if err != nil {
		http.Error(w, "whep: reading the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxOffer {
		http.Error(w, "whep: offer too large", http.StatusRequestEntityTooLarge)
		return
	}

	s.mu.Lock()
	video, audio, ended, closed, n := s.video, s.audio, s.ended, s.closed, len(s.sessions)
	s.mu.Unlock()
	switch {
	case closed:
		http.Error(w, "whep: server closed", http.StatusServiceUnavailable)
		return
	case ended:
		http.Error(w, "whep: the broadcast has ended", http.StatusGone)
		return
	case video == nil && audio == nil:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "whep: the broadcast has not started", http.StatusServiceUnavailable)
		return
	case n >= s.cfg.MaxSessions:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "whep: too many sessions", http.StatusServiceUnavailable)
		return
	}
	// One client holds at most its share: one that opened every session
	// would take sixteen times the stream's upload and count as sixteen
	// viewers.
	client := clientip.Key(r.RemoteAddr)
	if !s.admit(client) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "whep: too many sessions from your address", http.StatusTooManyRequests)
		return
	}
	registered := false
	defer func() {
		if !registered {
			s.mu.Lock()
			s.leave(client)
			s.mu.Unlock()
		}
	}()

	ss, answer, err := s.newSession(r, string(body), video, audio)
	if err != nil {
		s.log.Info("offer refused", "err", err)
		http.Error(w, "whep: "+err.Error(), http.StatusBadRequest)
		return
	}
	ss.client = client
	if !ss.watch() {
		ss.close()
		http.Error(w, "whep: server closed", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		ss.close()
		w.Header().Set("Retry-After", "5")
		http.Error(w, "whep: too many sessions", http.StatusServiceUnavailable)
		return
	}
	s.sessions[ss.id] = ss
	ss.counted, registered = true, true
	s.mu.Unlock()
	s.cfg.OnClients()

	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", location(r, ss.id))
	switch {
	case ss.audio != nil:
		h.Set(AudioHeader, "opus")
	case audio != nil:
		h.Set(AudioHeader, "none; codec="+string(audio.Codec))
	default:
		h.Set(AudioHeader, "none")
	}
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

// location is the session's URL path: the endpoint's own path as the client
// asked for it (before any StripPrefix), then the session ID.
func location(r *http.Request, id string) string {
	p := r.URL.Path
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		p = u.Path
	}
	return strings.TrimSuffix(p, "/") + "/" + id
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
