package httpserve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/httpserve"
)

// serve runs h on a loopback server built by New with cfg.
func serve(t *testing.T, h http.Handler, cfg httpserve.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserve.New(h, cfg, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d bytes", len(b))
	})
}

// rawPost sends a POST's headers and the first bytes of its body, then the
// rest one byte every pause, and returns the response, or the error.
func rawPost(t *testing.T, addr string, length int, first string, pause time.Duration) (*http.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", length, first)
	go func() {
		for i := len(first); i < length; i++ {
			time.Sleep(pause)
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return http.ReadResponse(bufio.NewReader(c), nil)
}

func TestSlowBodyIsCut(t *testing.T) {
	addr := serve(t, echo(), httpserve.Config{BodyTimeout: 300 * time.Millisecond})
	resp, err := rawPost(t, addr, 100, "x", 100*time.Millisecond)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow body: %s, connection closed %v", resp.Status, resp.Close)
	}
	// A body that is sent in time passes.
	resp, err = rawPost(t, addr, 5, "hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "5 bytes" {
		t.Fatalf("a body in time: %s %q", resp.Status, b)
	}
}

func TestLargeBodyIsRefused(t *testing.T) {
	addr := serve(t, echo(), httpserve.Config{MaxBodyBytes: 1000})
	for n, want := range map[int]int{1000: 200, 1001: http.StatusRequestEntityTooLarge} {
		resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", n)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%d bytes: %s, want %d", n, resp.Status, want)
		}
	}
}

// A handler that works longer than the body timeout after reading its body
// keeps its request's context (http.Server.ReadTimeout would cancel it).
func TestLongHandlerKeepsItsContext(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", 500)
		case <-time.After(600 * time.Millisecond):
			fmt.Fprint(w, "done")
		}
	}), httpserve.Config{BodyTimeout: 200 * time.Millisecond})
	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "done" {
		t.Fatalf("a handler longer than the body timeout: %s %q", resp.Status, b)
	}
}

// A stream that keeps writing outlives the write timeout; a client that
// stops reading is cut within it.
func TestRollingWriteDeadline(t *testing.T) {
	stalled := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			for i := range 10 {
				fmt.Fprintf(w, "event %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
			return
		}
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				stalled <- err
				return
			}
		}
	}), httpserve.Config{WriteTimeout: 200 * time.Millisecond})

	resp, err := http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "event 9") {
		t.Fatalf("a 500 ms stream under a 200 ms write timeout: %q", b)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-stalled:
		t.Logf("the stalled reader's write: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a client that stopped reading held the handler")
	}
}

func TestPerClient(t *testing.T) {
	p := httpserve.NewPerClient(2)
	req := func(addr string) *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		return r
	}
	a1, ok1 := p.Acquire(req("192.0.2.1:1000"))
	_, ok2 := p.Acquire(req("192.0.2.1:1001"))
	if _, ok := p.Acquire(req("192.0.2.1:1002")); !ok1 || !ok2 || ok {
		t.Fatalf("a third place for one address: %v %v %v", ok1, ok2, ok)
	}
	if _, ok := p.Acquire(req("192.0.2.2:1000")); !ok {
		t.Fatal("another address refused")
	}
	a1()
	a1() // twice is once
	if p.Held(req("192.0.2.1:1")) != 1 {
		t.Fatalf("held %d after one release", p.Held(req("192.0.2.1:1")))
	}
	// IPv6: one /64 is one client, whatever its addresses.
	_, ok1 = p.Acquire(req("[2001:db8:1:2::1]:1"))
	_, ok2 = p.Acquire(req("[2001:db8:1:2:ffff::9]:1"))
	if _, ok := p.Acquire(req("[2001:db8:1:2::abcd]:1")); !ok1 || !ok2 || ok {
		t.Fatalf("a /64 took more than its places: %v %v %v", ok1, ok2, ok)
	}
	if _, ok := p.Acquire(req("[2001:db8:1:3::1]:1")); !ok {
		t.Fatal("another /64 refused")
	}
	// As a handler: 429 while the client holds its places, a place back
	// once the request is served.
	held := make(chan struct{})
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-held }))
	go h.ServeHTTP(httptest.NewRecorder(), req("192.0.2.9:1"))
	go h.ServeHTTP(httptest.NewRecorder(), req("192.0.2.9:2"))
	for p.Held(req("192.0.2.9:3")) < 2 {
		time.Sleep(time.Millisecond)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req("192.0.2.9:3"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("a third request while two are held: %d", w.Code)
	}
	close(held)
	for p.Held(req("192.0.2.9:3")) > 0 {
		time.Sleep(time.Millisecond)
	}
}

// TestShutdownWithUnusedConnection: a connection that never sends a
// request does not hold Shutdown (net/http would wait until it is 5 s
// old, past a 2 s deadline).
func TestShutdownWithUnusedConnection(t *testing.T) {
	srv := httpserve.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), httpserve.Config{}, nil)
	httpserve.CloseUnusedOnShutdown(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Served once a request on a second connection is answered: by then
	// the server has accepted the first (it accepts in order).
	res, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a connection that sent nothing: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the unused connection is still open")
	}
}
