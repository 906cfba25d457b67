package page

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMount: the three files under a prefix and at the root, and nothing
// else under the prefix.
func TestMount(t *testing.T) {
	for _, prefix := range []string{"", "/directory"} {
		mux := http.NewServeMux()
		Mount(mux, prefix)
		for path, want := range map[string]string{
			prefix + "/":              "<!doctype html>",
			prefix + "/directory.js":  "./api/v1/",
			prefix + "/directory.css": "{",
		} {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), want) {
				t.Errorf("GET %s: %d, %.40q", path, rec.Code, body)
			}
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, prefix+"/page.go", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s/page.go: %d", prefix, rec.Code)
		}
	}
}
