package bootstrap_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
)

// TestHTTPSender posts codes to an SMS gateway as JSON with the bearer
// token, and reports a gateway's refusal.
func TestHTTPSender(t *testing.T) {
	var got struct{ To, Message, Auth string }
	status := http.StatusAccepted
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Auth = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
	}))
	defer gw.Close()
	s := bootstrap.HTTPSender{URL: gw.URL, Token: "tok"}
	if err := s.SendCode(context.Background(), "+15550100", "123456"); err != nil {
		t.Fatal(err)
	}
	if got.To != "+15550100" || !strings.Contains(got.Message, "123456") || got.Auth != "Bearer tok" {
		t.Fatalf("gateway got %+v", got)
	}
	status = http.StatusServiceUnavailable
	if err := s.SendCode(context.Background(), "+15550100", "123456"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a refusing gateway: %v", err)
	}
}
