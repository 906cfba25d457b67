package bootstrap_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// sixDigit returns the g-th six-digit guess that is not right.
func sixDigit(g int, right string) string {
	c := fmt.Sprintf("%06d", g)
	if c == right {
		c = fmt.Sprintf("%06d", g+500000)
	}
	return c
}

// TestPhoneResendAndGuess: someone who can ask for codes to a number (not
// read them) guesses, asking for a new code before each would-be last
// guess, from a few peers. Wrong guesses are counted per number per
// window, a resend does not reset them: however it is done, at most
// MaxNumberAttempts (5) guesses at a six-digit code per window; the
// codes sent after that are ten digits.
func TestPhoneResendAndGuess(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.RatePhone = bootstrap.Rate{PerSecond: -1} })
		ctx := context.Background()
		const phone = "+15550166"
		shortGuesses := 0
		for _, seed := range []byte{40, 41, 42, 43} {
			guesser := e.node(seed).from(fmt.Sprintf("198.51.100.%d", seed)) // several networks
			for round := 0; round < 5; round++ {
				if err := guesser.c.PhoneStart(ctx, phone); err != nil {
					break // sends for this peer (or number) used up
				}
				right := e.codes.code(phone)
				if len(right) != 6 {
					continue // the number is guarded: guessing a 10-digit code is hopeless
				}
				for g := 0; g < 4; g++ { // never the 5th: it used to lock
					_, err := guesser.c.PhoneVerify(ctx, phone, sixDigit(100*round+g+int(seed)*1000, right))
					if s, code := apiStatus(err); s == http.StatusBadRequest && code == "invalid_code" {
						shortGuesses++
					} else {
						break
					}
				}
			}
		}
		if shortGuesses > 5 {
			t.Fatalf("%d wrong guesses at six-digit codes in one window, resending between them; want at most 5", shortGuesses)
		}
		// The owner still gets in: a (long) code, verified.
		owner := e.node(44).from("203.0.113.44")
		if err := owner.c.PhoneStart(ctx, phone); err != nil {
			t.Fatalf("the owner cannot get a code: %v", err)
		}
		code := e.codes.code(phone)
		if len(code) != 10 {
			t.Fatalf("a %d-digit code to a number under attack, want 10", len(code))
		}
		if _, err := owner.c.PhoneVerify(ctx, phone, code); err != nil {
			t.Fatalf("the owner with the right code: %v", err)
		}
	})
}

// TestPhoneThirdPartyLockout: mallory asks for a code to carol's number
// and guesses until she is refused, and asks for more codes. Carol, the
// number's owner, can still ask for a code and sign in with it.
func TestPhoneThirdPartyLockout(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.RatePhone = bootstrap.Rate{PerSecond: -1} })
		ctx := context.Background()
		carol, mallory := e.node(3).from("203.0.113.3"), e.node(4).from("198.51.100.4")
		const phone = "+15550100"
		if err := mallory.c.PhoneStart(ctx, phone); err != nil {
			t.Fatal(err)
		}
		right := e.codes.code(phone)
		refused := false
		for g := 0; g < 20 && !refused; g++ {
			_, err := mallory.c.PhoneVerify(ctx, phone, sixDigit(g, right))
			if s, _ := apiStatus(err); s == http.StatusTooManyRequests {
				refused = true
			}
		}
		if !refused {
			t.Fatal("mallory guessed 20 times unrefused")
		}
		for i := 0; i < 5; i++ {
			_ = mallory.c.PhoneStart(ctx, phone)
		}
		if err := carol.c.PhoneStart(ctx, phone); err != nil {
			t.Fatalf("carol is locked out of her own number by mallory: %v", err)
		}
		res, err := carol.c.PhoneVerify(ctx, phone, e.codes.code(phone))
		if err != nil {
			t.Fatalf("carol with her code: %v", err)
		}
		if !strings.HasPrefix(res.Account.Handle, "+1•••0100") {
			t.Fatalf("carol's handle %q", res.Account.Handle)
		}
		// Mallory is the one refused.
		_, err = mallory.c.PhoneVerify(ctx, phone, "0000000000")
		mustStatus(t, err, http.StatusTooManyRequests, "locked")
	})
}

// TestPhoneNetworkSends: from one network, at most 3 codes to a number an
// hour, whatever the peers asking; another network still gets one (so
// nobody uses a number's sends up from one place).
func TestPhoneNetworkSends(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		const phone = "+15550133"
		for i := 0; i < 3; i++ {
			if err := e.node(byte(50+i)).from("198.51.100.9").c.PhoneStart(ctx, phone); err != nil {
				t.Fatalf("code %d: %v", i+1, err)
			}
		}
		mustStatus(t, e.node(53).from("198.51.100.9").c.PhoneStart(ctx, phone), http.StatusTooManyRequests, "rate_limited")
		if err := e.node(54).from("203.0.113.54").c.PhoneStart(ctx, phone); err != nil {
			t.Fatalf("another network: %v", err)
		}
	})
}
