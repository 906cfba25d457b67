package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/peerscope/peerscope/bootstrap/api"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e api.ErrorBody
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// fail answers an error with the status its kind calls for; errors of no
// known kind are the server's fault and logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, "internal"
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		status, code = http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, errUnsupportedMedia):
		status, code = http.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, ErrBadRequest):
		status, code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, errOldSignature):
		status, code = http.StatusUnauthorized, "signature_version"
	case errors.Is(err, errWrongBootstrap):
		status, code = http.StatusUnauthorized, "wrong_bootstrap"
	case errors.Is(err, ErrUnauthenticated):
		status, code = http.StatusUnauthorized, "unauthenticated"
	case errors.Is(err, ErrNoSession):
		status, code = http.StatusForbidden, "not_signed_in"
	case errors.Is(err, ErrForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrNotPrivate):
		status, code = http.StatusConflict, "not_private"
	case errors.Is(err, ErrStale):
		status, code = http.StatusConflict, "stale"
	case errors.Is(err, ErrLocked):
		status, code = http.StatusTooManyRequests, "locked"
	case errors.Is(err, ErrRateLimited):
		status, code = http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, ErrStateInvalid):
		status, code = http.StatusBadRequest, "invalid_state"
	case errors.Is(err, ErrCodeInvalid):
		status, code = http.StatusBadRequest, "invalid_code"
	case errors.Is(err, errProviderRefused):
		status, code = http.StatusBadRequest, "provider_refused"
	case errors.Is(err, ErrProvider):
		status, code = http.StatusBadGateway, "provider_error"
	case errors.Is(err, ErrUnavailable):
		status, code = http.StatusNotImplemented, "not_configured"
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "60")
	}
	if status >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		if status == http.StatusInternalServerError {
			writeError(w, status, code, "internal error")
			return
		}
	}
	writeError(w, status, code, err.Error())
}

var errUnsupportedMedia = errors.New("bootstrap: the body must be application/json")

// readBody reads a request body of at most the configured size.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
}

// decodeStrict decodes one JSON object into v: the content type must be
// JSON, unknown fields and trailing data are refused.
func decodeStrict(r *http.Request, body []byte, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errUnsupportedMedia
		}
	} else {
		return errUnsupportedMedia
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: JSON: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: JSON: data after the object", ErrBadRequest)
	}
	return nil
}

// clientIP is the address the per-address limits count: the request's
// remote address, or, when that is one of the trusted reverse proxies,
// the rightmost address in X-Forwarded-For that is not a trusted proxy
// (what a client writes to the left of it can be forged).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	isTrusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if len(trusted) == 0 || !isTrusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if _, err := netip.ParseAddr(h); err != nil {
			return host // garbage: count it against the proxy
		}
		if !isTrusted(h) {
			return h
		}
	}
	return host
}

// netKey is the key a per-address limit counts an address under: an IPv4
// address alone, an IPv6 address by its /64 (one customer's, as ISPs hand
// them out: every address in it is the same client's to use). Anything
// that does not parse counts as itself.
func netKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

func atoiDefault(s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %q is not a number from %d to %d", ErrBadRequest, s, lo, hi)
	}
	return n, nil
}
