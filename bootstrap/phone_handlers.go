package bootstrap

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Sign up with a phone: a code sent by SMS (store_phone.go for what bounds
// guessing and sending), proved by the node that asked for it.

// Code lengths: a guarded number's codes are long.
const (
	phoneCodeDigits     = 6
	phoneLongCodeDigits = 10
)

func (s *Server) phoneKey(parts ...string) []byte {
	m := hmac.New(sha256.New, s.cfg.Keys.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (s *Server) handlePhoneStart(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Phone == nil {
		s.fail(w, r, fmt.Errorf("%w: phone sign-up", ErrUnavailable))
		return
	}
	now := s.cfg.Now()
	network := netKey(clientIP(r, s.cfg.TrustedProxies))
	if !s.phoneLimit.allow(network, now) {
		s.fail(w, r, fmt.Errorf("%w: too many codes asked from this address", ErrRateLimited))
		return
	}
	p, body, err := s.signed(w, r)
	var req api.PhoneStart
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	phone := ""
	if err == nil {
		var ok bool
		if phone, ok = normalizePhone(req.Phone); !ok {
			err = fmt.Errorf("%w: %q is not a phone number in E.164 form (+15550100)", ErrBadRequest, clip(req.Phone, 20))
		}
	}
	phoneID := hex.EncodeToString(s.phoneKey("phone", phone))
	if err == nil && !s.phoneNetLimit.allow(phoneID+" "+network, now) {
		err = fmt.Errorf("%w: %d codes to this number asked from this network within %s", ErrRateLimited, s.cfg.PhoneLimits.MaxNetworkSends, s.cfg.PhoneLimits.SendWindow)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code, err := s.store.beginPhone(r.Context(), phoneID, p.String(), now, s.cfg.PhoneLimits, func(long bool) (string, []byte, error) {
		digits := phoneCodeDigits
		if long {
			digits = phoneLongCodeDigits
		}
		code, err := randomDigits(s.cfg.Rand, digits)
		return code, s.phoneKey("code", phone, code), err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Phone.SendCode(r.Context(), phone, code); err != nil {
		s.fail(w, r, fmt.Errorf("%w: sending the code: %w", ErrProvider, err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent": true, "expires": now.Add(s.cfg.PhoneLimits.CodeTTL).UTC()})
}

// randomDigits returns n uniform decimal digits from rnd (a byte a digit,
// those of 250 and above drawn again).
func randomDigits(rnd io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	var rb [16]byte
	for len(out) < n {
		if _, err := io.ReadFull(rnd, rb[:]); err != nil {
			return "", err
		}
		for _, b := range rb {
			if b < 250 && len(out) < n {
				out = append(out, '0'+b%10)
			}
		}
	}
	return string(out), nil
}

func (s *Server) handlePhoneVerify(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Phone == nil {
		s.fail(w, r, fmt.Errorf("%w: phone sign-up", ErrUnavailable))
		return
	}
	p, body, err := s.signed(w, r)
	var req api.PhoneVerify
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	phone := ""
	if err == nil {
		var ok bool
		if phone, ok = normalizePhone(req.Phone); !ok {
			err = fmt.Errorf("%w: not a phone number in E.164 form", ErrBadRequest)
		} else if n := len(req.Code); (n != phoneCodeDigits && n != phoneLongCodeDigits) || strings.Trim(req.Code, "0123456789") != "" {
			err = fmt.Errorf("%w: the code is %d (or %d) digits", ErrBadRequest, phoneCodeDigits, phoneLongCodeDigits)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	phoneID := hex.EncodeToString(s.phoneKey("phone", phone))
	if err := s.store.checkPhone(ctx, phoneID, p.String(), s.phoneKey("code", phone, req.Code), s.cfg.Now(), s.cfg.PhoneLimits, hmac.Equal); err != nil {
		s.fail(w, r, err)
		return
	}
	// The account ID is a keyed hash of the number: stable, and the
	// attestation (which everyone in a chat sees) does not give the number
	// away. The handle is the mask and a fingerprint of the number, unique
	// here: two numbers ending alike do not look alike.
	subject := "p" + phoneID[:24]
	handle, err := s.phoneHandle(ctx, phone, subject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acc, err := s.store.UpsertAccount(ctx, Account{Account: api.Account{Provider: "phone", Subject: subject, Handle: handle}}, s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.issue(ctx, acc, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// fingerprintAlphabet writes a phone handle's fingerprint (Crockford's
// base 32: no I, L, O or U to misread).
var fingerprintAlphabet = base32.NewEncoding(signinAlphabet).WithPadding(base32.NoPadding)

// phoneHandle is how a phone account shows: its number's mask (country
// code and last four digits) and a fingerprint of the number, keyed with
// the bootstrap's secret (so it says nothing of the number): "+1•••0100·K7QMZ".
// Five characters (25 bits) unless another phone account here already
// shows the same, then as many more as it takes.
func (s *Server) phoneHandle(ctx context.Context, phone, subject string) (string, error) {
	fp := fingerprintAlphabet.EncodeToString(s.phoneKey("phone-handle", phone))
	for n := 5; n <= 16; n++ {
		h := maskPhone(phone) + "·" + fp[:n]
		taken, err := s.store.handleTaken(ctx, "phone", h, subject)
		if err != nil || !taken {
			return h, err
		}
	}
	return "", fmt.Errorf("bootstrap: no free handle for a phone account")
}
