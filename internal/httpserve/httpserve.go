package httpserve

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Config is the bounds a server puts on each client. Zero fields take
// DefaultConfig's.
type Config struct {
	// ReadHeaderTimeout bounds the request line and headers.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading the body, from when the handler chain
	// starts.
	BodyTimeout time.Duration
	// WriteTimeout bounds each write and flush of a response.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// MaxBodyBytes is the largest request body taken (413 beyond).
	MaxBodyBytes int64
	// MaxHeaderBytes is the largest request header taken (431 beyond).
	MaxHeaderBytes int
}

// DefaultConfig returns the bounds the node's servers use: bodies are
// small JSON or SDP offers (a WHIP offer is at most 64 KiB).
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout: 10 * time.Second,
		BodyTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxBodyBytes:      256 << 10,
		MaxHeaderBytes:    64 << 10,
	}
}

func (c Config) filled() Config {
	d := DefaultConfig()
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&c.BodyTimeout, &d.BodyTimeout},
		{&c.WriteTimeout, &d.WriteTimeout}, {&c.IdleTimeout, &d.IdleTimeout},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return c
}

// New returns a server for h with cfg's bounds (Limit around h, and the
// header and idle timeouts); its errors are logged at debug level.
func New(h http.Handler, cfg Config, log *slog.Logger) *http.Server {
	cfg = cfg.filled()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           Limit(h, cfg),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Limit reads each request's body whole, within cfg.BodyTimeout and
// cfg.MaxBodyBytes, before h runs (408 and 413 otherwise), and gives each
// write of h's response cfg.WriteTimeout.
func Limit(h http.Handler, cfg Config) http.Handler {
	cfg = cfg.filled()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rw := &rollingWriter{ResponseWriter: w, rc: rc, timeout: cfg.WriteTimeout}
		rw.extend()
		if r.Body != nil && r.Body != http.NoBody {
			body, status := readBody(w, r, rc, cfg)
			if status != 0 {
				w.Header().Set("Connection", "close")
				http.Error(rw, http.StatusText(status), status)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		h.ServeHTTP(rw, r)
	})
}

// readBody reads r's body within the body timeout, or says why not (408,
// 413, 400).
func readBody(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, cfg Config) ([]byte, int) {
	_ = rc.SetReadDeadline(time.Now().Add(cfg.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
	// No deadline once the body is in: net/http's background read would
	// otherwise cancel the request's context when it passes.
	_ = rc.SetReadDeadline(time.Time{})
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return body, 0
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge
	case isTimeout(err):
		return nil, http.StatusRequestTimeout
	}
	return nil, http.StatusBadRequest
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// rollingWriter gives each write and flush of a response its own deadline.
type rollingWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *rollingWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

func (w *rollingWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which streaming handlers ask for.
func (w *rollingWriter) Flush() {
	w.extend()
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *rollingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
