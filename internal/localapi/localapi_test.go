package localapi_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/internal/localapi"
)

const token = "the-page-token"

// req builds a request as the server would see it: from remote, come in
// on local, to host.
func req(method, host, remote, local string) *http.Request {
	r := httptest.NewRequest(method, "http://"+host+"/api", strings.NewReader("{}"))
	r.Host, r.RemoteAddr = host, remote
	la, _ := net.ResolveTCPAddr("tcp", local)
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
}

func status(h http.Handler, r *http.Request) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })

func TestHostAndOrigin(t *testing.T) {
	g := localapi.New(localapi.Config{Token: token, Names: []string{"My-Node.example."},
		Open: func(r *http.Request) bool { return r.URL.Path == "/open" }})
	h := g.Handler(ok)
	const loop, lan = "127.0.0.1:8080", "192.168.1.5:8443"
	for _, c := range []struct {
		host, remote, local, origin string
		tls                         bool
		want                        int
	}{
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "", false, 418},
		{"localhost:8080", "127.0.0.1:5000", loop, "", false, 418},
		{"LocalHost.:8080", "127.0.0.1:5000", loop, "", false, 418},
		{"[::1]:8080", "[::1]:5000", "[::1]:8080", "", false, 418},
		{"127.0.0.2:8080", "127.0.0.1:5000", loop, "", false, 418},
		{"my-node.example:8080", "127.0.0.1:5000", loop, "", false, 418},
		{"my-node.example", "10.0.0.9:5000", lan, "", false, 418},
		{"192.168.1.5:8443", "192.168.1.20:5000", lan, "", true, 418}, // a phone on the LAN, by address
		{"evil.example:8080", "127.0.0.1:5000", loop, "", false, 403}, // DNS rebinding
		{"192.168.1.6:8443", "192.168.1.20:5000", lan, "", true, 403}, // not the address it came in on
		{"localhost.evil.example", "127.0.0.1:5000", loop, "", false, 403},
		{"", "127.0.0.1:5000", loop, "", false, 403},
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "http://127.0.0.1:8080", false, 418},
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "http://LOCALHOST:8080", false, 403}, // another origin, however local
		{"localhost", "127.0.0.1:5000", loop, "http://localhost", false, 418},
		{"localhost:80", "127.0.0.1:5000", loop, "http://localhost", false, 418},
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "http://127.0.0.1:9999", false, 403},
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "https://127.0.0.1:8080", false, 403},
		{"127.0.0.1:8443", "127.0.0.1:5000", loop, "https://127.0.0.1:8443", true, 418},
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "null", false, 403},
		{"127.0.0.1:8080", "127.0.0.1:5000", loop, "http://127.0.0.1:8080/x", false, 403},
	} {
		r := req("POST", c.host, c.remote, c.local)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := status(h, r); got != c.want {
			t.Errorf("Host %q Origin %q from %s on %s: %d, want %d", c.host, c.origin, c.remote, c.local, got, c.want)
		}
	}
	// An open route: any name, any origin.
	r := req("POST", "evil.example", "203.0.113.1:1", lan)
	r.URL.Path = "/open"
	r.Header.Set("Origin", "https://elsewhere.example")
	if got := status(h, r); got != 418 {
		t.Errorf("an open route: %d", got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	g := localapi.New(localapi.Config{})
	h := localapi.Headers(g.Handler(ok))
	// An answer, and a refusal.
	for _, host := range []string{"127.0.0.1:1", "evil.example"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req("GET", host, "127.0.0.1:2", "127.0.0.1:1"))
		for k, want := range map[string]string{"Content-Security-Policy": localapi.DefaultCSP, "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cross-Origin-Resource-Policy": "same-origin"} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("Host %s: %s: %q, want %q", host, k, got, want)
			}
		}
	}
	// A page's own policy replaces the default.
	w := httptest.NewRecorder()
	localapi.Headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
	})).ServeHTTP(w, req("GET", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"))
	if got := w.Header().Values("Content-Security-Policy"); len(got) != 1 || got[0] != "default-src 'self'" {
		t.Errorf("a page's own CSP: %q", got)
	}
}

func TestOwner(t *testing.T) {
	g := localapi.New(localapi.Config{Token: token})
	h := g.OwnerWrites(ok)
	const loop, lan = "127.0.0.1:8080", "192.168.1.5:8080"
	for _, c := range []struct {
		method, remote, local, contentType, token string
		want                                      int
	}{
		{"POST", "127.0.0.1:1", loop, "application/json", token, 418},
		{"POST", "127.0.0.1:1", loop, "application/json; charset=utf-8", token, 418},
		{"POST", "192.168.1.5:1", lan, "application/json", token, 418}, // this machine, by its LAN address
		{"POST", "192.168.1.20:1", lan, "application/json", token, 403},
		{"POST", "127.0.0.1:1", loop, "application/json", "", 403},
		{"POST", "127.0.0.1:1", loop, "application/json", token + "x", 403},
		{"POST", "127.0.0.1:1", loop, "text/plain", token, 415},
		{"POST", "127.0.0.1:1", loop, "application/x-www-form-urlencoded", token, 415},
		{"POST", "127.0.0.1:1", loop, "multipart/form-data; boundary=x", token, 415},
		{"POST", "127.0.0.1:1", loop, "", token, 415},
		{"POST", "127.0.0.1:1", loop, "application/jsonx", token, 415},
		{"DELETE", "127.0.0.1:1", loop, "text/plain", token, 415},
		{"GET", "192.168.1.20:1", lan, "", "", 418}, // reads pass OwnerWrites
		{"HEAD", "127.0.0.1:1", loop, "", "", 418},
	} {
		r := req(c.method, "127.0.0.1:8080", c.remote, c.local)
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		if c.token != "" {
			r.Header.Set(localapi.TokenHeader, c.token)
		}
		if got := status(h, r); got != c.want {
			t.Errorf("%s %q from %s, token %q: %d, want %d", c.method, c.contentType, c.remote, c.token, got, c.want)
		}
	}
	// Owner guards reads too.
	r := req("GET", "127.0.0.1:8080", "127.0.0.1:1", loop)
	if got := status(g.Owner(ok), r); got != 403 {
		t.Errorf("Owner, a read without the token: %d", got)
	}
	r.Header.Set(localapi.TokenHeader, token)
	if got := status(g.Owner(ok), r); got != 418 {
		t.Errorf("Owner, a read with the token: %d", got)
	}
	if got := status(localapi.Local(ok), req("GET", "x", "192.168.1.20:1", lan)); got != 403 {
		t.Errorf("Local from the LAN: %d", got)
	}
}

func TestPageToken(t *testing.T) {
	g := localapi.New(localapi.Config{})
	if len(g.Token()) < 40 || localapi.New(localapi.Config{}).Token() == g.Token() {
		t.Fatalf("token %q: want a long random one", g.Token())
	}
	if got := g.PageToken(req("GET", "x", "127.0.0.1:1", "127.0.0.1:8080")); got != g.Token() {
		t.Errorf("a page on this machine: %q", got)
	}
	if got := g.PageToken(req("GET", "x", "192.168.1.20:1", "192.168.1.5:8080")); got != "" {
		t.Errorf("a page on another machine: %q", got)
	}
	page := []byte(`<head>` + localapi.TokenMeta + `</head>`)
	if got := string(localapi.WithToken(page, `a"<b`)); got != `<head><meta name="peerscope-token" content="a&#34;&lt;b"></head>` {
		t.Errorf("WithToken: %s", got)
	}
}

func TestEqual(t *testing.T) {
	const key = "abcdefghijklmnopqrst"
	for _, c := range []struct {
		got, want string
		eq        bool
	}{
		{key, key, true},
		{"", key, false},
		{key[:19], key, false},
		{key + "u", key, false},
		{"bbcdefghijklmnopqrst", key, false},
		{"abcdefghijklmnopqrsu", key, false},
		{"ABCDEFGHIJKLMNOPQRST", key, false},
		{"", "", false},
	} {
		if localapi.Equal(c.got, c.want) != c.eq {
			t.Errorf("Equal(%q, %q) = %v", c.got, c.want, !c.eq)
		}
	}
}
