package peer_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/peerscope/peerscope/web/peer"
)

// TestHandler: the bundle as it is, or gzipped to a client that takes it;
// both give the embedded bytes.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(peer.Handler())
	defer srv.Close()
	if !bytes.Contains(peer.Script, []byte("PeerscopePeer")) {
		t.Fatal("the embedded bundle does not set PeerscopePeer")
	}
	for _, enc := range []string{"", "gzip"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept-Encoding", enc)
		if enc == "" {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		} else if enc == "gzip" {
			t.Error("gzip asked for, not given")
		}
		b, _ := io.ReadAll(body)
		resp.Body.Close()
		if !bytes.Equal(b, peer.Script) || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("Accept-Encoding %q: %d bytes of %s", enc, len(b), resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}
