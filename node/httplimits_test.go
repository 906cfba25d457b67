package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/node"
)

// TestSlowBodyCut: a client that sends its request body a byte at a time
// is cut off instead of holding a handler for ever.
func TestSlowBodyCut(t *testing.T) {
	t.Parallel()
	n := newNode(t, node.Config{})
	c, err := net.Dial("tcp", n.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /directory/api/node/watch HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", n.HTTPAddr())
	done := make(chan error, 1)
	go func() {
		// A byte every second, as long as the node reads.
		for range 60 {
			time.Sleep(time.Second)
			if _, err := c.Write([]byte(" ")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the slow body was not cut: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %s, want 408", resp.Status)
	}
}

// TestEventStreamsPerClient: one client holds at most
// web.DefaultStreamsPerClient chat event streams across all the node's
// broadcasts, and node.DefaultDirectoryStreamsPerClient directory streams.
func TestEventStreamsPerClient(t *testing.T) {
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}})
	a, b := liveWithChat(t, n, "a"), liveWithChat(t, n, "b")
	open := func(url string) int {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
		}
		return resp.StatusCode
	}
	for i := range web.DefaultStreamsPerClient {
		if code := open(a.URLs().Player + "chat/events"); code != http.StatusOK {
			t.Fatalf("chat stream %d: %d", i, code)
		}
	}
	if code := open(b.URLs().Player + "chat/events"); code != http.StatusTooManyRequests {
		t.Fatalf("a chat stream of another broadcast past the cap: %d, want 429", code)
	}
	for i := range node.DefaultDirectoryStreamsPerClient {
		if code := open(n.HTTPURL() + "/directory/api/v1/events"); code != http.StatusOK {
			t.Fatalf("directory stream %d: %d", i, code)
		}
	}
	if code := open(n.HTTPURL() + "/directory/api/v1/events"); code != http.StatusTooManyRequests {
		t.Fatalf("a directory stream past the cap: %d, want 429", code)
	}
}
