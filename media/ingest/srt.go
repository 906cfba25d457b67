package ingest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	srt "github.com/datarhei/gosrt"

	"github.com/peerscope/peerscope/media"
)

// SRTConfig says whom an SRT listener admits.
type SRTConfig struct {
	// StreamID is the stream key a publisher must present as its SRT
	// streamid: as is ("KEY"), as "publish:KEY", or in the access-control
	// form "#!::r=KEY,m=publish". Empty admits any streamid.
	StreamID string
	// Passphrase, when set (10 to 79 characters), makes the stream
	// encrypted (AES): a publisher must use the same passphrase. When
	// empty, encrypted publishers are refused.
	Passphrase string
	// Latency is SRT's receive latency, the time it has to recover lost
	// packets. Default 120 ms (SRT's own default).
	Latency time.Duration
	// Once makes Run return after the first publisher's session, with its
	// error; by default Run serves one publisher after another until ctx
	// ends, logging why each session ended.
	Once bool
}

// SRT is a media.Source listening for an SRT publisher that sends MPEG-TS
// (ffmpeg -f mpegts 'srt://host:9000?streamid=KEY&passphrase=...', OBS).
type SRT struct {
	ln        srt.Listener
	cfg       SRTConfig
	opts      options
	busy      atomic.Bool
	closeOnce sync.Once
}

var _ media.Source = (*SRT)(nil)

// ListenSRT binds addr (":9000") for publishers.
func ListenSRT(addr string, cfg SRTConfig, opts ...Option) (*SRT, error) {
	c := srt.DefaultConfig()
	if cfg.Passphrase != "" {
		if n := len(cfg.Passphrase); n < 10 || n > 79 {
			return nil, fmt.Errorf("%w: SRT passphrase of %d characters, want 10 to 79", ErrConfig, n)
		}
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("%w: negative SRT latency", ErrConfig)
	}
	if cfg.Latency > 0 {
		c.ReceiverLatency, c.PeerLatency = cfg.Latency, cfg.Latency
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ln, err := srt.Listen("srt", addr, c)
	if err != nil {
		return nil, err
	}
	return &SRT{ln: ln, cfg: cfg, opts: newOptions(opts)}, nil
}

// ListenSRTURL binds the listener an srt:// URL describes:
// "srt://:9000?streamid=KEY&passphrase=SECRET&latency=200" (latency in
// milliseconds).
func ListenSRTURL(url string, opts ...Option) (*SRT, error) {
	var c srt.Config
	addr, err := c.UnmarshalURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return ListenSRT(addr, SRTConfig{StreamID: c.StreamId, Passphrase: c.Passphrase, Latency: c.ReceiverLatency}, opts...)
}

// Addr is the bound address.
func (s *SRT) Addr() net.Addr { return s.ln.Addr() }

// Close stops listening and ends the current session; Run does it when it
// returns. Safe to call twice.
func (s *SRT) Close() error {
	s.closeOnce.Do(s.ln.Close)
	return nil
}

// streamKey extracts the key from the streamid forms publishers use, and
// reports whether the request is for publishing.
func streamKey(id string) (key string, publish bool) {
	if rest, ok := strings.CutPrefix(id, "#!::"); ok {
		publish = true
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "r":
				key = v
			case "m":
				publish = v == "publish"
			}
		}
		return key, publish
	}
	if rest, ok := strings.CutPrefix(id, "publish:"); ok {
		return rest, true
	}
	if strings.HasPrefix(id, "read:") || strings.HasPrefix(id, "request:") {
		return "", false
	}
	return id, true
}

// admit decides on a connection request.
func (s *SRT) admit(req srt.ConnRequest) (srt.RejectionReason, string) {
	key, publish := streamKey(req.StreamId())
	switch {
	case !publish:
		return srt.REJX_BAD_MODE, "not a publisher"
	case s.cfg.StreamID != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.StreamID)) != 1:
		return srt.REJX_UNAUTHORIZED, "wrong stream key"
	case s.cfg.Passphrase == "" && req.IsEncrypted():
		return srt.REJ_UNSECURE, "encrypted, and no passphrase is set"
	case s.cfg.Passphrase != "" && !req.IsEncrypted():
		return srt.REJ_UNSECURE, "not encrypted"
	case s.cfg.Passphrase != "" && req.SetPassphrase(s.cfg.Passphrase) != nil:
		return srt.REJ_BADSECRET, "wrong passphrase"
	case s.busy.Load():
		return srt.REJX_CONFLICT, "another publisher is live"
	}
	return 0, ""
}

// Run accepts publishers, one at a time, and feeds their streams to sink
// until ctx ends (then it returns ctx.Err()), or, with SRTConfig.Once, until
// the first session ends. A session that fails with bad input is logged
// and the next publisher is awaited; an error from the sink that is not
// about the input ends Run.
func (s *SRT) Run(ctx context.Context, sink media.Sink) error {
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	conns := make(chan srt.Conn)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			req, err := s.ln.Accept2()
			if err != nil {
				return // closed
			}
			if reason, why := s.admit(req); reason != 0 {
				s.opts.log.Info("SRT publisher refused", "remote", req.RemoteAddr(), "why", why)
				req.Reject(reason)
				continue
			}
			conn, err := req.Accept()
			if err != nil {
				s.opts.log.Info("SRT accept failed", "remote", req.RemoteAddr(), "err", err)
				continue
			}
			s.busy.Store(true)
			select {
			case conns <- conn:
			case <-ctx.Done():
				conn.Close()
				return
			}
		}
	}()
	defer func() {
		s.Close()
		<-acceptDone
	}()

	for {
		var conn srt.Conn
		select {
		case conn = <-conns:
		case <-ctx.Done():
			return ctx.Err()
		case <-acceptDone:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errors.New("ingest: SRT listener closed")
		}
		err := s.session(ctx, conn, sink)
		s.busy.Store(false)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case s.cfg.Once:
			return err
		case err != nil && !errors.Is(err, media.ErrBadInput) && !isConnErr(err):
			return err // the sink's
		}
		s.opts.log.Info("SRT session ended", "remote", conn.RemoteAddr(), "err", err)
	}
}

func (s *SRT) session(ctx context.Context, conn srt.Conn, sink media.Sink) error {
	defer conn.Close()
	// Closing the connection is what unblocks its Read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	s.opts.log.Info("SRT publisher", "remote", conn.RemoteAddr(), "streamid", conn.StreamId())
	_, err := demuxTS(ctx, conn, sink, s.opts)
	return err
}

// isConnErr reports whether err is the connection's end rather than the
// stream's content.
func isConnErr(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}
