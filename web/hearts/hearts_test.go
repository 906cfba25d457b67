package hearts_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/web/hearts"
)

// TestHandler: the two files, with their types, and nothing else.
func TestHandler(t *testing.T) {
	h := hearts.Handler()
	for path, want := range map[string]string{"/hearts.js": "peerscopeHearts", "/hearts.css": ".hearts-canvas"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header())
		}
	}
	for _, path := range []string{"/", "/hearts.go", "/other.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, rec.Code)
		}
	}
}
