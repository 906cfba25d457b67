package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/peerscope/peerscope/media"
)

// Config configures a Handler. Authorize and Publish are required.
type Config struct {
	// Authorize says whether a stream key may publish: nil admits it;
	// ErrBusy refuses it with 409 and ErrEnded with 410 (each saying so);
	// any other error refuses it with 401 (the error is logged, not sent).
	Authorize func(key string) error
	// Publish is called for an admitted offer and returns the sink the
	// session's media goes to; an error refuses the offer with 503. The
	// sink gets its tracks at the first keyframe, and is used by one
	// goroutine.
	Publish func(key string, info Info) (media.Sink, error)
	// Unpublish, when set, is called once for every successful Publish when
	// the session ends: err is nil after the publisher's DELETE, otherwise
	// why (ErrConnectionLost, ErrNoKeyframe, ErrClosed, ErrReplaced, a sink
	// error).
	Unpublish func(key string, err error)

	// KeyframeInterval is how often a keyframe is asked for (RTCP PLI), so
	// that segments start often; default 2 s, negative for never.
	KeyframeInterval time.Duration
	// FirstKeyframeTimeout ends a session whose first usable keyframe has
	// not come this long after its offer (ICE never connected, no camera);
	// default 15 s.
	FirstKeyframeTimeout time.Duration
	// MediaTimeout ends a session, as ErrConnectionLost, when nothing
	// (RTP or RTCP) has come from its publisher for this long since it
	// connected: a browser that went away without a DELETE (a phone that
	// lost the network, a tab killed) holds its key no longer, so that it
	// can come back at once. Default DefaultMediaTimeout, negative for
	// never (then only ICE's own failure, after about 15 s, ends it).
	MediaTimeout time.Duration
	// MaxSessions bounds simultaneous publishers; default 16.
	MaxSessions int

	// UDPPort, when set, carries every session's media on that one UDP port
	// (easy to open in a firewall); 0 uses an ephemeral port per session.
	UDPPort int
	// PublicIPs are addresses to announce instead of the interfaces' own
	// (a node behind a port-forwarding router); none by default.
	PublicIPs []string
	// ICEServers for the answer side; none by default: the node answers
	// with its host candidates and the browser, which knows its own way
	// out, connects to them.
	ICEServers []webrtc.ICEServer
	// SettingEngine, when set, is called on the SettingEngine after this
	// package's settings, for what Config does not cover (tests use it to
	// keep to loopback).
	SettingEngine func(*webrtc.SettingEngine)

	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Info is what a publisher tells about its broadcast besides the media.
type Info struct {
	// Title from the POST URL's title query parameter (the broadcaster
	// page sends it), as sent: whoever announces it cleans it (the node,
	// with announce.CleanTitle, the one rule for titles).
	Title      string
	RemoteAddr string // the HTTP client's address
	UserAgent  string
}

// DefaultMediaTimeout is Config.MediaTimeout's default: longer than any
// pause of a live sender (browsers send RTCP reports every second or so
// even when a track is muted), short enough that a reconnect is let in
// within a few seconds.
const DefaultMediaTimeout = 4 * time.Second

// DefaultConfig returns the defaults New fills in; Authorize and Publish
// are left for the caller.
func DefaultConfig() Config {
	return Config{
		KeyframeInterval:     2 * time.Second,
		FirstKeyframeTimeout: 15 * time.Second,
		MediaTimeout:         DefaultMediaTimeout,
		MaxSessions:          16,
	}
}

const (
	maxOfferBytes  = 64 << 10
	gatherTimeout  = 5 * time.Second
	allowedMethods = "POST, DELETE, PATCH, OPTIONS"
)

// Handler is the WHIP endpoint. POST to it (any path it is mounted on) with
// an SDP offer; the answer's Location names the session resource, which
// takes DELETE.
type Handler struct {
	cfg Config
	api *webrtc.API
	log *slog.Logger
	mux ice.UDPMux
	udp net.PacketConn

	mu       sync.Mutex
	closed   bool
	sessions map[string]*session // by resource ID
	live     map[string]*session // by stream key
}

var _ http.Handler = (*Handler)(nil)

// New checks cfg and builds the WebRTC stack.
func New(cfg Config) (*Handler, error) {
	def := DefaultConfig()
	if cfg.KeyframeInterval == 0 {
		cfg.KeyframeInterval = def.KeyframeInterval
	}
	if cfg.FirstKeyframeTimeout == 0 {
		cfg.FirstKeyframeTimeout = def.FirstKeyframeTimeout
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = def.MaxSessions
	}
	if cfg.MediaTimeout == 0 {
		cfg.MediaTimeout = def.MediaTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Authorize == nil:
		return nil, fmt.Errorf("%w: Authorize is required", ErrConfig)
	case cfg.Publish == nil:
		return nil, fmt.Errorf("%w: Publish is required", ErrConfig)
	case cfg.FirstKeyframeTimeout < 0 || cfg.MaxSessions < 0:
		return nil, fmt.Errorf("%w: negative timeout or limit", ErrConfig)
	case cfg.UDPPort < 0 || cfg.UDPPort > 65535:
		return nil, fmt.Errorf("%w: UDP port %d", ErrConfig, cfg.UDPPort)
	}
	for _, ip := range cfg.PublicIPs {
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("%w: public IP %q is not an IP address", ErrConfig, ip)
		}
	}
	h := &Handler{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "whip"),
		sessions: make(map[string]*session),
		live:     make(map[string]*session),
	}

	m := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"}}
	for i, p := range h264Profiles {
		err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p,
				RTCPFeedback: videoFB,
			},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return nil, err
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}

	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled) // no multicast on the LAN
	se.SetIncludeLoopbackCandidate(true)                    // a browser on the node's own machine
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	if cfg.UDPPort != 0 {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: cfg.UDPPort})
		if err != nil {
			return nil, fmt.Errorf("whip: UDP port %d: %w", cfg.UDPPort, err)
		}
		h.udp = conn
		h.mux = webrtc.NewICEUDPMux(nil, conn)
		se.SetICEUDPMux(h.mux)
	}
	if cfg.SettingEngine != nil {
		cfg.SettingEngine(&se)
	}
	h.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return h, nil
}

// ServeHTTP implements WHIP: POST an offer to create a session, DELETE its
// resource to end it; PATCH (trickle ICE) is not offered.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Access-Control-Allow-Methods", allowedMethods)
	hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	hdr.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Post")
	hdr.Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodOptions:
		hdr.Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		h.post(w, r)
	case http.MethodDelete:
		h.delete(w, r)
	case http.MethodPatch:
		hdr.Set("Allow", "POST, DELETE, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed, "trickle ICE is not offered: send the offer with all candidates gathered")
	default:
		hdr.Set("Allow", allowedMethods)
		httpError(w, http.StatusMethodNotAllowed, "WHIP takes POST (an SDP offer) and DELETE (a session)")
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// post takes an offer: it checks the stream key and the offer, reserves
// the key, answers with every candidate gathered, hands the stream to
// Publish and starts the session. Each step answers the request itself
// when it refuses.
func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	log := h.log.With("remote", r.RemoteAddr)
	key, ok := h.authorize(w, r, log)
	if !ok {
		return
	}
	log = log.With("key", redact(key))
	offer, info, ok := readOffer(w, r, log)
	if !ok {
		return
	}
	s, ok := h.reserve(w, key, info, log)
	if !ok {
		return
	}
	answer, code, err := h.negotiate(r.Context(), s, offer)
	if err != nil {
		h.abort(s, err)
		log.Warn("whip: offer failed", "err", err)
		httpError(w, code, err.Error())
		return
	}
	sink, err := h.cfg.Publish(key, Info{Title: r.URL.Query().Get("title"), RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		h.abort(s, err)
		log.Warn("whip: the node refused the stream", "err", err)
		httpError(w, http.StatusServiceUnavailable, "the node cannot take this stream now")
		return
	}
	h.start(s, sink)

	loc := path.Join(requestPath(r), s.id)
	w.Header().Set("Location", loc)
	w.Header().Set("ETag", `"`+s.id+`"`)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
	log.Info("whip: session created", "session", s.id[:8], "audio", info.opus)
}

// authorize returns the stream key of a request that carries an SDP offer
// and a key that Config.Authorize accepts; otherwise it answers 415 or 401.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, log *slog.Logger) (key string, ok bool) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/sdp") {
		httpError(w, http.StatusUnsupportedMediaType, "the offer must be sent as Content-Type: application/sdp")
		return "", false
	}
	if key := bearer(r); key != "" {
		h.takeOver(key, log)
	}
	return Authorize(w, r, h.cfg.Authorize, log)
}

// takeOverWait bounds how long a new offer waits for the session it
// replaces to end.
const takeOverWait = 5 * time.Second

// takeOver ends the session that holds key if it never connected (no ICE
// and DTLS through, nothing heard from it), and waits for it to be gone, so
// that the node has let the key go. That session's publisher is most likely
// the one asking again: a phone page reloaded, or a client retrying after
// its first offer's answer was lost. Before, such a key was held for
// FirstKeyframeTimeout (15 s) and every retry was answered 409. A session
// that connected is left alone: a second tab or device is refused (409)
// until the first stops or is noticed gone (MediaTimeout). It acts only for
// a key Config.Authorize accepts (or refuses as busy: the key is right), and
// asked only when such a session exists, so that an ordinary offer's key
// is checked once.
func (h *Handler) takeOver(key string, log *slog.Logger) {
	h.mu.Lock()
	s := h.live[key]
	if s == nil || h.sessions[s.id] != s || s.heardAt.Load() != 0 {
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	if err := h.cfg.Authorize(key); err != nil && !errors.Is(err, ErrBusy) {
		return
	}
	log.Info("whip: a new offer replaces a session that never connected", "session", s.id[:8])
	s.stop(ErrReplaced)
	t := time.NewTimer(takeOverWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}

// Authorize checks the stream key a request carries as WHIP's do
// ("Authorization: Bearer KEY") and returns it if authorize accepts it.
// Otherwise it answers 401 as the WHIP endpoint does — a missing key and a
// refused one told apart, nothing more about why — logs a refused key
// (redacted) to log if not nil, and returns false. Another endpoint that
// the stream key opens (the go-live page's) uses it so that a wrong key
// gets the very same answer there.
func Authorize(w http.ResponseWriter, r *http.Request, authorize func(key string) error, log *slog.Logger) (key string, ok bool) {
	key = bearer(r)
	if key == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="peerscope"`)
		httpError(w, http.StatusUnauthorized, "missing stream key: send it as Authorization: Bearer <stream key>")
		return "", false
	}
	if err := authorize(key); err != nil {
		if log != nil {
			log.With("key", redact(key)).Warn("stream key refused", "path", r.URL.Path, "err", err)
		}
		switch {
		case errors.Is(err, ErrBusy):
			httpError(w, http.StatusConflict, busyMessage)
		case errors.Is(err, ErrEnded):
			httpError(w, http.StatusGone, "this broadcast has ended: start a new one on the node to go live again")
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="peerscope", error="invalid_token"`)
			httpError(w, http.StatusUnauthorized, "stream key refused")
		}
		return "", false
	}
	return key, true
}

// busyMessage is what a second publisher is told: the truth, and what to
// do about it.
const busyMessage = "another publisher is live on this broadcast (another tab or device, or this one before its connection dropped): " +
	"end it there, or if it went away, try again in a few seconds, once the node has noticed"

// readOffer reads the request's SDP offer and returns it with what it
// offers; an offer too large, malformed or without H.264 is answered 413,
// 400 or 406.
func readOffer(w http.ResponseWriter, r *http.Request, log *slog.Logger) ([]byte, offerInfo, bool) {
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the offer is larger than %d bytes", maxOfferBytes))
		return nil, offerInfo{}, false
	}
	info, err := inspectOffer(offer)
	if err != nil {
		log.Warn("whip: malformed offer", "err", err)
		httpError(w, http.StatusBadRequest, "malformed SDP offer: "+err.Error())
		return nil, offerInfo{}, false
	}
	if !info.h264 {
		offered := "no video at all"
		if len(info.videoCodecs) > 0 {
			offered = "only " + strings.Join(info.videoCodecs, ", ") + " video"
		}
		log.Warn("whip: refused an offer without H.264", "offered", offered)
		httpError(w, http.StatusNotAcceptable, "this offer has "+offered+
			". Peerscope needs H.264 video (constrained baseline or baseline, profile-level-id 42e01f or 42001f, packetization-mode=1)"+
			" so that HLS viewers can play it; Opus audio is optional. Enable H.264 in the encoder or use a browser that offers it.")
		return nil, offerInfo{}, false
	}
	return offer, info, true
}

// reserve makes the session of a new publisher and reserves its stream key
// while the answer is made; a closed handler, a key already live or too
// many sessions are answered 503, 409 or 503.
func (h *Handler) reserve(w http.ResponseWriter, key string, info offerInfo, log *slog.Logger) (*session, bool) {
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "the node is shutting down")
		return nil, false
	case h.live[key] != nil:
		h.mu.Unlock()
		log.Warn("whip: refused a second publisher on a live key")
		httpError(w, http.StatusConflict, busyMessage)
		return nil, false
	case len(h.sessions) >= h.cfg.MaxSessions:
		h.mu.Unlock()
		log.Warn("whip: too many sessions", "max", h.cfg.MaxSessions)
		httpError(w, http.StatusServiceUnavailable, "too many broadcasts on this node")
		return nil, false
	}
	s := &session{key: key, h: h, hasAudio: info.opus, t0: h.cfg.Now(),
		events: make(chan event, 64), wantKey: make(chan struct{}, 1), done: make(chan struct{})}
	s.id = newID()
	s.log = log.With("session", s.id[:8])
	s.ctx, s.stop = context.WithCancelCause(context.Background())
	h.live[key] = s
	h.mu.Unlock()
	return s, true
}

// start registers a negotiated session, publishing into sink, and runs it
// until its connection ends. A handler closed meanwhile stops it at once.
func (h *Handler) start(s *session, sink media.Sink) {
	s.sink = sink
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.stop(ErrClosed)
	} else {
		h.sessions[s.id] = s
		h.mu.Unlock()
	}
	s.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("whip: connection state", "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.heardAt.CompareAndSwap(0, h.cfg.Now().UnixNano()) // MediaTimeout counts from here
		case webrtc.PeerConnectionStateFailed:
			s.stop(fmt.Errorf("%w: ICE/DTLS failed", ErrConnectionLost))
		case webrtc.PeerConnectionStateClosed:
			s.stop(fmt.Errorf("%w: closed", ErrConnectionLost))
		}
	})
	go s.run()
}

// negotiate makes the PeerConnection and the answer, with every candidate
// gathered (no trickle). It returns the HTTP status for its error.
func (h *Handler) negotiate(ctx context.Context, s *session, offer []byte) (string, int, error) {
	pc, err := h.api.NewPeerConnection(webrtc.Configuration{ICEServers: h.cfg.ICEServers})
	if err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("whip: %w", err)
	}
	s.pc = pc
	pc.OnTrack(s.onTrack)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("the offer was not accepted: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("no answer to this offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("whip: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, gatherTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", http.StatusServiceUnavailable, fmt.Errorf("whip: gathering candidates: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, 0, nil
}

// requestPath is the path the client used, even under http.StripPrefix,
// so that Location resolves to this handler.
func requestPath(r *http.Request) string {
	if r.RequestURI != "" && r.RequestURI != "*" {
		if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
			return p
		}
	}
	return r.URL.Path
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id := path.Base(r.URL.Path)
	h.mu.Lock()
	s := h.sessions[id]
	h.mu.Unlock()
	if s == nil {
		httpError(w, http.StatusNotFound, "no such WHIP session")
		return
	}
	s.stop(errDeleted)
	<-s.done
	w.WriteHeader(http.StatusOK)
}

// abort undoes a session that never started.
func (h *Handler) abort(s *session, err error) {
	s.stop(err)
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if s.pc != nil {
		s.pc.Close()
	}
	s.readers.Wait()
	h.forget(s)
}

// forget drops an ended session from the tables.
func (h *Handler) forget(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, s.id)
	if h.live[s.key] == s {
		delete(h.live, s.key)
	}
}

// RequestKeyframe asks the publisher on key for a keyframe (an RTCP PLI),
// for a viewer that needs one now. It reports whether key is live. Requests
// closer than half a second apart are merged.
func (h *Handler) RequestKeyframe(key string) bool {
	h.mu.Lock()
	s := h.live[key]
	h.mu.Unlock()
	if s == nil {
		return false
	}
	s.requestKeyframe()
	return true
}

// Live reports whether a publisher holds key.
func (h *Handler) Live(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live[key] != nil
}

// Close ends every session (their Unpublish gets ErrClosed) and refuses
// new ones. It is safe to call more than once.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	var all []*session
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.stop(ErrClosed)
	}
	for _, s := range all {
		<-s.done
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mux != nil {
		h.mux.Close()
		h.udp.Close()
		h.mux = nil
	}
	return nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// redact keeps a stream key out of the logs, bar a hint.
func redact(key string) string {
	if len(key) <= 4 {
		return "****"
	}
	return key[:2] + "…" + key[len(key)-2:]
}
