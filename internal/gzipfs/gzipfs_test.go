package gzipfs_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/peerscope/peerscope/internal/gzipfs"
)

var files = fstest.MapFS{
	"app.js":     {Data: []byte(strings.Repeat("console.log('peerscope');\n", 200))},
	"app.css":    {Data: []byte(strings.Repeat(".heart { opacity: 0; }\n", 200))},
	"index.html": {Data: []byte("<!doctype html><title>x</title>")},
	"logo.png":   {Data: []byte("\x89PNG not really")},
}

// TestFileServer: a browser that takes gzip gets the same bytes gzipped,
// with their type and Vary; one that does not, a Range, an unknown file or
// a directory get exactly what http.FileServerFS gives.
func TestFileServer(t *testing.T) {
	srv := httptest.NewServer(gzipfs.FileServer(files))
	defer srv.Close()
	do := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		// The transport would ask for gzip itself and undo it quietly:
		// ask explicitly, and read the bytes as sent.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for name, typ := range map[string]string{"/app.js": "text/javascript", "/app.css": "text/css"} {
		resp, body := do(name, "Accept-Encoding", "br, gzip;q=0.8")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) ||
			resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s gzipped: %d %q", name, resp.StatusCode, resp.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if want := files[strings.TrimPrefix(name, "/")].Data; !bytes.Equal(plain, want) || len(body) >= len(want)/4 {
			t.Errorf("%s: %d bytes gzipped to %d, unpacked equal %v", name, len(want), len(body), bytes.Equal(plain, want))
		}
		for _, h := range [][]string{{}, {"Accept-Encoding", "gzip;q=0"}, {"Accept-Encoding", "gzip", "Range", "bytes=0-9"}} {
			resp, body := do(name, h...)
			if resp.Header.Get("Content-Encoding") != "" || !bytes.HasPrefix(files[strings.TrimPrefix(name, "/")].Data, body) || len(body) == 0 {
				t.Errorf("%s with %q: %d %q, %d bytes", name, h, resp.StatusCode, resp.Header, len(body))
			}
		}
	}
	for path, code := range map[string]int{"/missing.js": 404, "/logo.png": 200, "/": 200, "/index.html": 301} {
		resp, _ := do(path, "Accept-Encoding", "gzip")
		if resp.StatusCode != code || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: %d %q, want %d uncompressed", path, resp.StatusCode, resp.Header, code)
		}
	}
}
