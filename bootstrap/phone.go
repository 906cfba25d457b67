package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// A CodeSender delivers a one-time sign-up code to a phone number.
type CodeSender interface {
	SendCode(ctx context.Context, phone, code string) error
}

// ConsoleSender logs codes instead of sending them: for local setups and
// tests (whoever runs the bootstrap reads the code from its log).
type ConsoleSender struct {
	Logger *slog.Logger
}

// SendCode logs the code.
func (c ConsoleSender) SendCode(_ context.Context, phone, code string) error {
	l := c.Logger
	if l == nil {
		l = slog.Default()
	}
	l.Info("phone sign-up code (console sender)", "phone", phone, "code", code)
	return nil
}

// HTTPSender posts each code as JSON to an SMS gateway:
//
//	POST URL  {"to": "+15550100", "message": "Your Peerscope code is 123456"}
//
// with an optional bearer token; any 2xx is success.
type HTTPSender struct {
	URL    string
	Token  string
	Client *http.Client
}

// SendCode posts the code to the gateway.
func (h HTTPSender) SendCode(ctx context.Context, phone, code string) error {
	body, _ := json.Marshal(map[string]string{"to": phone, "message": "Your Peerscope code is " + code})
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bootstrap: SMS gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	hc := h.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("bootstrap: SMS gateway: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("bootstrap: SMS gateway: %s", resp.Status)
	}
	return nil
}

// normalizePhone checks an E.164 number: '+', then 8 to 15 digits, the
// first not 0.
func normalizePhone(s string) (string, bool) {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return "", false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	return s, true
}

// maskPhone shows a number as the attestation's handle without giving it
// away: "+1•••••0100".
func maskPhone(p string) string {
	if len(p) < 7 {
		return "phone"
	}
	return p[:2] + "•••" + p[len(p)-4:]
}
