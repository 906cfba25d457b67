package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPprofServesOnLoopbackOnly(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.com:6060", "127.0.0.1"} {
		if srv, err := servePprof(bad); err == nil {
			srv.Close()
			t.Errorf("servePprof(%q) served; want an error", bad)
		} else if !strings.Contains(err.Error(), PprofEnv) {
			t.Errorf("servePprof(%q): %v; want the error to name %s", bad, err, PprofEnv)
		}
	}
	srv, err := servePprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: %s, %.200q", resp.Status, body)
	}
}
