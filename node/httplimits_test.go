package node_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

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
