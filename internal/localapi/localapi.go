package localapi

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// TokenHeader is the request header a page's scripts send its token in.
const TokenHeader = "Peerscope-Token"

// TokenMeta is the placeholder a page's HTML carries where its token goes
// (WithToken fills it); scripts read
// document.querySelector('meta[name="peerscope-token"]').content.
const TokenMeta = `<meta name="peerscope-token" content="">`

// DefaultCSP is the Content-Security-Policy of every answer whose handler
// sets none: nothing may be loaded, framed, posted or based.
const DefaultCSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Config configures a Guard.
type Config struct {
	// Names are the host names the server answers to besides localhost and
	// its own addresses (a node reached by name, through a proxy or DNS).
	Names []string
	// Open, when set, tells the requests that carry their own credential
	// and may come from any origin, under any host name (WHIP: its bearer
	// stream key).
	Open func(*http.Request) bool
	// Token is the page token; empty: a random one.
	Token string
}

// Guard checks the requests of a node's web server (see the package
// documentation). Make one with New; it is safe for concurrent use.
type Guard struct {
	token string
	names map[string]bool
	open  func(*http.Request) bool
}

// New returns a guard.
func New(cfg Config) *Guard {
	g := &Guard{token: cfg.Token, names: map[string]bool{}, open: cfg.Open}
	if g.token == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		g.token = base64.RawURLEncoding.EncodeToString(b[:])
	}
	for _, n := range cfg.Names {
		if n = normalName(n); n != "" {
			g.names[n] = true
		}
	}
	if g.open == nil {
		g.open = func(*http.Request) bool { return false }
	}
	return g
}

// Token returns the page token: what a page served on this machine sends
// in TokenHeader. A program on this machine may send it too.
func (g *Guard) Token() string { return g.token }

// PageToken returns the token for a page served to r: the token when r
// comes from this machine, "" otherwise.
func (g *Guard) PageToken(r *http.Request) string {
	if FromThisMachine(r) {
		return g.token
	}
	return ""
}

// WithToken returns page with its TokenMeta filled with token.
func WithToken(page []byte, token string) []byte {
	return bytes.Replace(page, []byte(TokenMeta),
		[]byte(`<meta name="peerscope-token" content="`+html.EscapeString(token)+`">`), 1)
}

// Handler checks every request's Host and Origin before h (Config.Open's
// excepted).
func (g *Guard) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.open(r) {
			if !g.ownHost(r) {
				refuse(w, http.StatusForbidden, "this node answers only to its own names (Host "+r.Host+")")
				return
			}
			if !sameOrigin(r) {
				refuse(w, http.StatusForbidden, "this node's pages are its own: requests from other sites are refused")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Headers gives every answer of h the default security headers: a strict
// Content-Security-Policy (DefaultCSP: a page sets its own in its place),
// X-Frame-Options, nosniff, no referrer, and resources for this origin
// only.
func Headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", DefaultCSP)
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// OwnerWrites lets reads (GET, HEAD) through and requires of every other
// request what Owner does.
func (g *Guard) OwnerWrites(h http.Handler) http.Handler {
	owner := g.Owner(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		owner.ServeHTTP(w, r)
	})
}

// Owner requires of every request that it be the owner's page's: a body,
// if any method but GET or HEAD, of Content-Type application/json (415),
// from this machine, with the page token (403).
func (g *Guard) Owner(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !IsJSON(r) {
			refuse(w, http.StatusUnsupportedMediaType, "send JSON, with Content-Type: application/json")
			return
		}
		if !FromThisMachine(r) || !Equal(r.Header.Get(TokenHeader), g.token) {
			refuse(w, http.StatusForbidden, "only this node's own pages, on this machine, may do this (the page token is missing or wrong)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Local lets through only requests from this machine (reads of the
// owner's that cannot carry a header, such as an EventSource's).
func Local(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !FromThisMachine(r) {
			refuse(w, http.StatusForbidden, "only this machine may read this")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsJSON reports whether r says its body is application/json.
func IsJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// FromThisMachine reports whether r came from this machine: from a
// loopback address, or from the very address it came in on.
func FromThisMachine(r *http.Request) bool {
	remote := addrOf(r.RemoteAddr)
	if !remote.IsValid() {
		return false
	}
	if remote.IsLoopback() {
		return true
	}
	local := localAddr(r)
	return local.IsValid() && local == remote
}

// Equal compares two secrets in constant time, whatever their contents
// and lengths (it compares their SHA-256 digests); an empty want matches
// nothing.
func Equal(got, want string) bool {
	if want == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// ownHost reports whether r's Host names this node: localhost, a loopback
// address, the address the request came in on, or a configured name.
func (g *Guard) ownHost(r *http.Request) bool {
	name := normalName(hostOnly(r.Host))
	if name == "" {
		return false
	}
	if name == "localhost" || g.names[name] {
		return true
	}
	a, err := netip.ParseAddr(name)
	if err != nil {
		return false // a name: only the configured ones
	}
	a = a.Unmap().WithZone("")
	return a.IsLoopback() || a == localAddr(r)
}

// sameOrigin reports whether r's Origin, if it has one, is the server's
// own: the scheme it was served over and the host it asked for.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" {
		return false // "null" among them
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(withPort(u.Host, scheme), withPort(r.Host, scheme))
}

// withPort names host with its port, the scheme's default if it has none.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func normalName(n string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
}

func addrOf(hostport string) netip.Addr {
	a, err := netip.ParseAddr(hostOnly(hostport))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// localAddr is the address r came in on.
func localAddr(r *http.Request) netip.Addr {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return netip.Addr{}
	}
	return addrOf(a.String())
}

func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}
