// Package gzipfs serves the pages' embedded scripts and styles gzipped to
// a browser that takes gzip: the same files as http.FileServerFS, about a
// quarter of the bytes over the wire. Each file is compressed once, on its
// first request, and kept (the files are embedded: they never change while
// the process runs).
package gzipfs

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// compressible are the extensions worth compressing: text. (Images and
// fonts are compressed already; there are none embedded today.)
var compressible = map[string]bool{".js": true, ".css": true, ".html": true, ".svg": true, ".json": true}

// FileServer is http.FileServerFS(fsys), except that a GET or HEAD of a
// compressible file, from a client whose Accept-Encoding names gzip and
// that asks for no Range, gets the file gzipped (Content-Encoding: gzip).
// Every answer it can compress says Vary: Accept-Encoding, so that a cache
// keeps the two apart.
func FileServer(fsys fs.FS) http.Handler {
	s := &server{fsys: fsys, plain: http.FileServerFS(fsys), packed: map[string]*packed{}}
	return s
}

type server struct {
	fsys  fs.FS
	plain http.Handler

	mu     sync.Mutex
	packed map[string]*packed // by file name; nil when the file is not there
}

type packed struct {
	body []byte
	mod  time.Time
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	// Only a file named as such: directories, their index.html (which
	// FileServer redirects) and the rest go to FileServer unchanged.
	if !compressible[path.Ext(name)] || strings.HasSuffix(r.URL.Path, "/") || path.Base(name) == "index.html" {
		s.plain.ServeHTTP(w, r)
		return
	}
	w.Header().Add("Vary", "Accept-Encoding")
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.Header.Get("Range") != "" || !acceptsGzip(r) {
		s.plain.ServeHTTP(w, r)
		return
	}
	p := s.get(name)
	if p == nil {
		s.plain.ServeHTTP(w, r) // not found, or unreadable: FileServer says so
		return
	}
	h := w.Header()
	h.Set("Content-Encoding", "gzip")
	if h.Get("Content-Type") == "" {
		// ServeContent would sniff the compressed bytes; name the type.
		h.Set("Content-Type", contentType(name))
	}
	http.ServeContent(w, r, name, p.mod, bytes.NewReader(p.body))
}

// get returns name compressed, compressing it on first use.
func (s *server) get(name string) *packed {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.packed[name]; ok {
		return p
	}
	var p *packed
	if raw, err := fs.ReadFile(s.fsys, name); err == nil {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		p = &packed{body: b.Bytes()}
		if fi, err := fs.Stat(s.fsys, name); err == nil {
			p.mod = fi.ModTime()
		}
	}
	s.packed[name] = p
	return p
}

// acceptsGzip says whether r's Accept-Encoding names gzip with a non-zero
// quality.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	default:
		return "application/json"
	}
}
