package rtmp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/peerscope/peerscope/internal/clientip"
	"github.com/peerscope/peerscope/media"
)

// Config configures a Server. Authorize and Publish are required; the rest
// have defaults.
type Config struct {
	// App is the first path element of the publish URL
	// (rtmp://host:port/App/KEY); default "live".
	App string

	// Authorize says whether key may publish: nil admits it; an error
	// refuses it (the error is logged; the encoder is told only that the key
	// was refused).
	Authorize func(key string) error

	// Publish is called for an admitted publisher once its tracks are known
	// (about two seconds of media in) and returns the sink its media goes
	// to. An error refuses the stream. The sink is used by one goroutine.
	Publish func(key string) (media.Sink, error)

	// Unpublish, when set, is called once for every successful Publish when
	// that publisher is gone: err is nil when it ended the stream itself,
	// otherwise why it was cut off.
	Unpublish func(key string, err error)

	// HandshakeTimeout bounds the handshake, connect and publish commands;
	// default 10 s.
	HandshakeTimeout time.Duration
	// ReadTimeout is how long a publisher may stay silent; default 10 s.
	ReadTimeout time.Duration
	// MaxConns bounds simultaneous connections; more are closed at once.
	// Default 64.
	MaxConns int
	// MaxHandshakesPerClient bounds the connections of one client (an IPv4
	// address or an IPv6 /64, internal/clientip) not yet admitted to
	// publish: in the handshake, connect and publish commands, or waiting
	// for Authorize. More from that client are closed at once. Default 4:
	// an encoder retrying, or a few on one machine.
	MaxHandshakesPerClient int

	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for wallclocks and deadlines; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults New fills in; Authorize and Publish
// are left for the caller.
func DefaultConfig() Config {
	return Config{
		App:                    "live",
		HandshakeTimeout:       10 * time.Second,
		ReadTimeout:            10 * time.Second,
		MaxConns:               64,
		MaxHandshakesPerClient: 4,
	}
}

// Server accepts RTMP publishers. Create it with New, hand it listeners
// with Serve, stop it with Close.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	shaking   map[net.Conn]string // connections not admitted yet, and their client
	perClient map[string]int      // connections not admitted yet, per client
	refused   int                 // refused since the last log line about it
	live      map[string]struct{} // keys being published
	wg        sync.WaitGroup
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	def := DefaultConfig()
	if cfg.App == "" {
		cfg.App = def.App
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = def.HandshakeTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = def.ReadTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = def.MaxConns
	}
	if cfg.MaxHandshakesPerClient == 0 {
		cfg.MaxHandshakesPerClient = def.MaxHandshakesPerClient
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
	case strings.Contains(cfg.App, "/"):
		return nil, fmt.Errorf("%w: App %q has a slash", ErrConfig, cfg.App)
	case cfg.HandshakeTimeout < 0 || cfg.ReadTimeout < 0 || cfg.MaxConns < 0 || cfg.MaxHandshakesPerClient < 0:
		return nil, fmt.Errorf("%w: negative timeout or limit", ErrConfig)
	}
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "rtmp"),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		shaking:   make(map[net.Conn]string),
		perClient: make(map[string]int),
		live:      make(map[string]struct{}),
	}, nil
}

// Serve accepts connections on ln until Close, and returns ErrServerClosed
// then. Each connection is served on its own goroutine.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.log.Info("rtmp: listening", "addr", ln.Addr().String(), "url", "rtmp://"+ln.Addr().String()+"/"+s.cfg.App+"/KEY")

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			// Temporary trouble (out of file descriptors): back off, as
			// net/http does, rather than spin or give up.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			s.log.Warn("rtmp: accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.track(conn) {
			continue
		}
		go s.handle(conn)
	}
}

// track registers conn, or closes it when the server is closed or full, or
// its client already has its share of handshakes: one client must not hold
// every slot while the encoder that owns the key is refused.
func (s *Server) track(conn net.Conn) bool {
	client := clientip.OfAddr(conn.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	full, busy := len(s.conns) >= s.cfg.MaxConns, s.perClient[client] >= s.cfg.MaxHandshakesPerClient
	if s.closed || full || busy {
		if !s.closed {
			// One line per burst, not per connection: a flood must not
			// become a flood of log lines.
			if s.refused++; s.refused == 1 || s.refused%1000 == 0 {
				s.log.Warn("rtmp: refusing connections", "remote", conn.RemoteAddr().String(), "server_full", full,
					"client_handshakes", s.perClient[client], "refused", s.refused)
			}
		}
		conn.Close()
		return false
	}
	s.refused = 0
	s.conns[conn] = struct{}{}
	s.shaking[conn] = client
	s.perClient[client]++
	s.wg.Add(1)
	return true
}

// admitted ends conn's handshake: its client may start another.
func (s *Server) admitted(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	client, ok := s.shaking[conn]
	if !ok {
		return
	}
	delete(s.shaking, conn)
	if s.perClient[client]--; s.perClient[client] <= 0 {
		delete(s.perClient, client)
	}
}

// Close stops every listener and cuts every connection, then waits for
// their goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Live reports whether a publisher is live on key.
func (s *Server) Live(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live[key]
	return ok
}

func (s *Server) handle(conn net.Conn) {
	log := s.log.With("remote", conn.RemoteAddr().String())
	defer func() {
		if p := recover(); p != nil {
			// A decoding bug must cost one connection, never the node.
			log.Error("rtmp: connection handler panicked; connection dropped", "panic", p, "stack", string(debug.Stack()))
		}
		conn.Close()
		s.admitted(conn)
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.wg.Done()
	}()
	err := s.serveConn(conn, log)
	switch {
	case err == nil:
		log.Info("rtmp: publisher ended the stream")
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrBusy), errors.Is(err, ErrNotPublisher),
		errors.Is(err, media.ErrUnsupportedCodec):
		log.Warn("rtmp: refused", "err", err)
	default:
		log.Warn("rtmp: connection closed", "err", err)
	}
}

// handshake runs a connection's handshake, connect and publish commands
// (under the handshake deadline, which it sets) and asks Authorize: it
// returns the connection and the stream key of a publisher that may go on.
func (s *Server) handshake(nc net.Conn) (*gortmplib.ServerConn, string, error) {
	nc.SetDeadline(s.cfg.Now().Add(s.cfg.HandshakeTimeout))
	sc := &gortmplib.ServerConn{RW: nc}
	if err := sc.Initialize(); err != nil {
		return nil, "", fmt.Errorf("%w: handshake or connect: %w", media.ErrBadInput, timeoutOr(err))
	}
	if err := sc.AcceptConn(); err != nil {
		return nil, "", fmt.Errorf("%w: waiting for publish: %w", media.ErrBadInput, timeoutOr(err))
	}
	if !sc.Publish {
		status(sc, "NetStream.Play.Failed", "this server only takes publishers; watch over HLS or WebRTC")
		return nil, "", ErrNotPublisher
	}
	key, err := StreamKey(sc.URL, s.cfg.App)
	if err != nil {
		status(sc, "NetStream.Publish.BadName", err.Error())
		return nil, "", err
	}
	if err := s.cfg.Authorize(key); err != nil {
		status(sc, "NetStream.Publish.Unauthorized", "stream key refused")
		return nil, "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return sc, key, nil
}

// serveConn runs one connection from the handshake to its end. It returns
// nil when a publisher ended its stream cleanly.
func (s *Server) serveConn(nc net.Conn, log *slog.Logger) (err error) {
	sc, key, err := s.handshake(nc)
	if err != nil {
		return err
	}
	log = log.With("key", redact(key))
	if !s.reserve(key) {
		status(sc, "NetStream.Publish.BadName", "this stream key is already live; stop the other encoder first")
		return ErrBusy
	}
	defer s.release(key)
	s.admitted(nc)
	if err := sc.AcceptAction(); err != nil {
		return fmt.Errorf("%w: %w", media.ErrBadInput, timeoutOr(err))
	}
	nc.SetDeadline(time.Time{})

	tc := &timedConn{Conn: sc, nc: nc, timeout: s.cfg.ReadTimeout, now: s.cfg.Now}
	r := &gortmplib.Reader{Conn: tc}
	if err := r.Initialize(); err != nil {
		if tc.ended {
			return nil
		}
		return fmt.Errorf("%w: looking for tracks: %w", media.ErrBadInput, timeoutOr(err))
	}
	tracks, err := mediaTracks(r.Tracks())
	if err != nil {
		status(sc, "NetStream.Publish.Rejected", err.Error())
		return err
	}
	sink, err := s.cfg.Publish(key)
	if err != nil {
		status(sc, "NetStream.Publish.Rejected", "the node cannot take this stream now")
		return fmt.Errorf("rtmp: publish refused by the node: %w", err)
	}
	if s.cfg.Unpublish != nil {
		defer func() {
			// The key is free before Unpublish says the publisher is gone:
			// an encoder that reconnects at once must not find it busy.
			s.release(key)
			s.cfg.Unpublish(key, err)
		}()
	}
	log.Info("rtmp: publishing", "tracks", describe(tracks))
	if err := sink.Tracks(tracks); err != nil {
		return fmt.Errorf("rtmp: sink refused the tracks: %w", err)
	}

	tl := newTimeline(tracks)
	if !tc.firstAt.IsZero() {
		tl.anchor(tc.firstAt, tc.firstDTS)
	}
	var sinkErr error
	for _, t := range r.Tracks() {
		switch t.Codec.(type) {
		case *codecs.H264:
			r.OnDataH264(t, func(pts, dts time.Duration, au [][]byte) {
				if sinkErr != nil {
					return
				}
				if smp, ok := tl.video(s.cfg.Now(), pts, dts, au); ok {
					sinkErr = sink.Sample(smp)
				}
			})
		case *codecs.MPEG4Audio:
			r.OnDataMPEG4Audio(t, func(pts time.Duration, au []byte) {
				if sinkErr != nil {
					return
				}
				if smp, ok := tl.audio(s.cfg.Now(), pts, au); ok {
					sinkErr = sink.Sample(smp)
				}
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if tc.ended {
				return nil
			}
			return fmt.Errorf("%w: %w", media.ErrBadInput, timeoutOr(err))
		}
		if sinkErr != nil {
			return fmt.Errorf("rtmp: sink: %w", sinkErr)
		}
	}
}

func (s *Server) reserve(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.live[key]; busy {
		return false
	}
	s.live[key] = struct{}{}
	return true
}

func (s *Server) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, key)
}

// StreamKey returns KEY from a publish URL rtmp://host[:port]/app/KEY[?query].
func StreamKey(u *url.URL, app string) (string, error) {
	if u == nil {
		return "", fmt.Errorf("%w: no URL", ErrUnauthorized)
	}
	p := strings.TrimPrefix(u.Path, "/")
	gotApp, key, ok := strings.Cut(p, "/")
	switch {
	case !ok || gotApp != app:
		return "", fmt.Errorf("%w: publish to rtmp://HOST/%s/KEY, not %q", ErrUnauthorized, app, "/"+p)
	case key == "":
		return "", fmt.Errorf("%w: the URL has no stream key: publish to rtmp://HOST/%s/KEY", ErrUnauthorized, app)
	case len(key) > 256 || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == '/' || r == 0x7f }):
		return "", fmt.Errorf("%w: malformed stream key", ErrUnauthorized)
	}
	return key, nil
}

// mediaTracks maps what the publisher sends to media tracks, refusing any
// codec the tree cannot carry.
func mediaTracks(in []*gortmplib.Track) ([]media.Track, error) {
	var out []media.Track
	var video, audio int
	for _, t := range in {
		switch c := t.Codec.(type) {
		case *codecs.H264:
			video++
			out = append(out, media.Track{ID: len(out) + 1, Codec: media.H264, ClockRate: 90000, SPS: c.SPS, PPS: c.PPS})
		case *codecs.MPEG4Audio:
			audio++
			if c.Config == nil {
				return nil, fmt.Errorf("%w: AAC without an AudioSpecificConfig", media.ErrBadInput)
			}
			asc, err := c.Config.Marshal()
			if err != nil {
				return nil, fmt.Errorf("%w: AAC config: %w", media.ErrBadInput, err)
			}
			channels := int(c.Config.ChannelConfig)
			switch channels {
			case 0: // layout in a program config element: take the decoder's count
				channels = c.Config.ChannelCount //nolint:staticcheck // the only count gortmplib has then
			case 7:
				channels = 8
			}
			out = append(out, media.Track{ID: len(out) + 1, Codec: media.AAC, ClockRate: c.Config.SampleRate,
				ChannelCount: channels, AudioConfig: asc})
		default:
			kind := "audio"
			if t.Codec.IsVideo() {
				kind = "video"
			}
			return nil, fmt.Errorf("%w: %s codec %s; Peerscope takes H.264 video and AAC audio over RTMP",
				media.ErrUnsupportedCodec, kind, codecName(t.Codec))
		}
	}
	if video > 1 || audio > 1 {
		return nil, fmt.Errorf("%w: %d video and %d audio tracks; Peerscope takes one of each",
			media.ErrUnsupportedCodec, video, audio)
	}
	return out, nil
}

func codecName(c codecs.Codec) string {
	switch c.(type) {
	case *codecs.H265:
		return "H.265"
	case *codecs.AV1:
		return "AV1"
	case *codecs.VP9:
		return "VP9"
	case *codecs.Opus:
		return "Opus"
	case *codecs.MPEG1Audio:
		return "MP3"
	case *codecs.AC3:
		return "AC-3"
	case *codecs.FLAC:
		return "FLAC"
	case *codecs.G711:
		return "G.711"
	case *codecs.LPCM:
		return "LPCM"
	}
	return fmt.Sprintf("%T", c)
}

func describe(tracks []media.Track) string {
	var parts []string
	for _, t := range tracks {
		parts = append(parts, fmt.Sprintf("%d:%s/%d", t.ID, t.Codec, t.ClockRate))
	}
	return strings.Join(parts, " ")
}

// redact keeps a stream key out of the logs, bar a hint.
func redact(key string) string {
	if len(key) <= 4 {
		return "****"
	}
	return key[:2] + "…" + key[len(key)-2:]
}

// status tells the encoder why it is refused; the connection is closed right
// after, so a write error changes nothing.
func status(sc *gortmplib.ServerConn, code, description string) {
	_ = sc.Write(&message.CommandAMF0{
		ChunkStreamID:   5,
		MessageStreamID: 0x1000000,
		Name:            "onStatus",
		Arguments: []any{
			nil,
			amf0.Object{
				{Key: "level", Value: "error"},
				{Key: "code", Value: code},
				{Key: "description", Value: description},
			},
		},
	})
}

func timeoutOr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("connection closed before the stream was ended: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// timedConn puts a read deadline on every message, notes when the first
// media message arrived, and turns the publisher's own end of stream into
// a clean end.
type timedConn struct {
	gortmplib.Conn
	nc      net.Conn
	timeout time.Duration
	now     func() time.Time

	firstAt  time.Time
	firstDTS time.Duration
	ended    bool
}

func (c *timedConn) Read() (message.Message, error) {
	c.nc.SetReadDeadline(c.now().Add(c.timeout))
	msg, err := c.Conn.Read()
	if err != nil {
		return nil, err
	}
	if c.firstAt.IsZero() {
		switch m := msg.(type) {
		case *message.Video:
			c.firstAt, c.firstDTS = c.now(), m.DTS
		case *message.Audio:
			c.firstAt, c.firstDTS = c.now(), m.DTS
		case *message.VideoExCodedFrames:
			c.firstAt, c.firstDTS = c.now(), m.DTS
		case *message.VideoExFramesX:
			c.firstAt, c.firstDTS = c.now(), m.DTS
		case *message.AudioExCodedFrames:
			c.firstAt, c.firstDTS = c.now(), m.DTS
		}
	}
	if cmd, ok := msg.(*message.CommandAMF0); ok {
		switch cmd.Name {
		case "FCUnpublish", "deleteStream", "closeStream":
			c.ended = true
			return nil, io.EOF
		}
	}
	return msg, nil
}
