package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// A CodeSender delivers a one-time sign-up code to a phone number.
type CodeSender interface {
	SendCode(ctx context.Context, phone, code string) error
}

// ConsoleSender prints codes instead of sending them, for local setups
// and tests: whoever runs the bootstrap reads the code on its output
// (whatever the log level) and gives it to the person signing up. The
// number is shown masked, as everywhere the bootstrap writes: logs are
// kept and shared, numbers should not be in them.
type ConsoleSender struct {
	Out io.Writer // default os.Stdout
}

// SendCode prints the code with the number masked.
func (c ConsoleSender) SendCode(_ context.Context, phone, code string) error {
	out := c.Out
	if out == nil {
		out = os.Stdout
	}
	_, err := fmt.Fprintf(out, "Phone sign-up code for %s: %s (console sender: give it to whoever asked)\n", maskPhone(phone), code)
	return err
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
