package bootstrap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Phone sign-up: a code per number and peer. What bounds guessing is the
// wrong attempts counted per number per window, whoever makes them (a
// resend resets nothing): past MaxNumberAttempts the number is guarded for
// GuardFor, its pending codes void, and the codes it gets are long. What a
// peer's own guesses trigger is a lock of that peer on that number: a third
// party cannot lock the owner out, who asks for a code (a long one, if the
// number is guarded) and signs in. Sends are bounded per peer, per number,
// and (in memory) per number and network, so that nobody can use up a
// number's sends from one network.

// PhoneLimits bound phone sign-up.
type PhoneLimits struct {
	CodeTTL time.Duration // how long a code is valid; default 10 min
	// MaxAttempts is the wrong codes one peer may try for a number per
	// SendWindow before that peer is locked (for Lockout) on that number;
	// default 5.
	MaxAttempts int
	// MaxNumberAttempts is the wrong codes all peers together may try for
	// a number per SendWindow before it is guarded; default 5.
	MaxNumberAttempts int
	// GuardFor is how long a number stays guarded; default 24 h.
	GuardFor time.Duration
	// MaxSends is the codes sent to a number for one peer per SendWindow;
	// default 3.
	MaxSends int
	// MaxNumberSends is the codes sent to a number per SendWindow, all
	// peers together (it bounds the texts one number can be sent); default
	// 20. Someone asking from more than MaxNumberSends/MaxNetworkSends
	// networks can use them up for the window: the one lockout left.
	MaxNumberSends int
	// MaxNetworkSends is the codes sent to a number per SendWindow for
	// requests from one network (an IPv4 address, an IPv6 /64); default 3.
	MaxNetworkSends int
	SendWindow      time.Duration // default 1 h
	Lockout         time.Duration // how long a peer stays locked; default 1 h
}

func (l *PhoneLimits) fill() {
	d := func(v *time.Duration, x time.Duration) {
		if *v == 0 {
			*v = x
		}
	}
	n := func(v *int, x int) {
		if *v == 0 {
			*v = x
		}
	}
	d(&l.CodeTTL, 10*time.Minute)
	d(&l.GuardFor, 24*time.Hour)
	d(&l.SendWindow, time.Hour)
	d(&l.Lockout, time.Hour)
	n(&l.MaxAttempts, 5)
	n(&l.MaxNumberAttempts, 5)
	n(&l.MaxSends, 3)
	n(&l.MaxNumberSends, 20)
	n(&l.MaxNetworkSends, 3)
}

// numberState is a number's row at now (its window reset if over).
type numberState struct {
	window       int64
	sends, wrong int
	guardedUntil int64
}

func readNumber(ctx context.Context, tx *sql.Tx, phone string, now time.Time, l PhoneLimits) (numberState, error) {
	var n numberState
	err := tx.QueryRowContext(ctx, `SELECT window_start, sends, wrong, guarded_until FROM phone_numbers WHERE phone = ?`, phone).
		Scan(&n.window, &n.sends, &n.wrong, &n.guardedUntil)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return n, err
	}
	if err != nil || now.UnixNano()-n.window >= int64(l.SendWindow) {
		n.window, n.sends, n.wrong = now.UnixNano(), 0, 0
	}
	return n, nil
}

func writeNumber(ctx context.Context, tx *sql.Tx, phone string, n numberState) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO phone_numbers (phone, window_start, sends, wrong, guarded_until) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (phone) DO UPDATE SET window_start = excluded.window_start, sends = excluded.sends, wrong = excluded.wrong, guarded_until = excluded.guarded_until`,
		phone, n.window, n.sends, n.wrong, n.guardedUntil)
	return err
}

// peerCode is a peer's row for a number at now (its window reset if over).
type peerCode struct {
	code                   []byte
	expires, window, until int64 // until: locked until
	attempts, sends        int
}

func readPeerCode(ctx context.Context, tx *sql.Tx, phone, peer string, now time.Time, l PhoneLimits) (peerCode, bool, error) {
	var c peerCode
	err := tx.QueryRowContext(ctx, `SELECT code, expires, attempts, sends, window_start, locked_until FROM phone_codes WHERE phone = ? AND peer = ?`, phone, peer).
		Scan(&c.code, &c.expires, &c.attempts, &c.sends, &c.window, &c.until)
	if errors.Is(err, sql.ErrNoRows) {
		return peerCode{window: now.UnixNano()}, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if now.UnixNano()-c.window >= int64(l.SendWindow) {
		c.window, c.sends, c.attempts = now.UnixNano(), 0, 0
	}
	return c, true, nil
}

func writePeerCode(ctx context.Context, tx *sql.Tx, phone, peer string, c peerCode) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO phone_codes (phone, peer, code, expires, attempts, sends, window_start, locked_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (phone, peer) DO UPDATE SET code = excluded.code, expires = excluded.expires, attempts = excluded.attempts,
	sends = excluded.sends, window_start = excluded.window_start, locked_until = excluded.locked_until`,
		phone, peer, c.code, c.expires, c.attempts, c.sends, c.window, c.until)
	return err
}

// beginPhone records a new code for a number and peer (replacing the
// peer's pending one), made by newCode (long when the number is guarded),
// unless the peer is locked on the number or a send limit is reached. It
// returns the code to send.
func (s *Store) beginPhone(ctx context.Context, phone, peer string, now time.Time, l PhoneLimits, newCode func(long bool) (string, []byte, error)) (string, error) {
	var code string
	err := s.txLocked(ctx, []string{lockName("phone", phone)}, func(tx *sql.Tx) error {
		num, err := readNumber(ctx, tx, phone, now, l)
		if err != nil {
			return err
		}
		c, _, err := readPeerCode(ctx, tx, phone, peer, now, l)
		if err != nil {
			return err
		}
		switch {
		case now.UnixNano() < c.until:
			return fmt.Errorf("%w: this node made too many wrong attempts at codes for this number", ErrLocked)
		case c.sends >= l.MaxSends:
			return fmt.Errorf("%w: %d codes sent to this number for this node within %s", ErrRateLimited, c.sends, l.SendWindow)
		case num.sends >= l.MaxNumberSends:
			return fmt.Errorf("%w: %d codes sent to this number within %s", ErrRateLimited, num.sends, l.SendWindow)
		}
		var hash []byte
		if code, hash, err = newCode(now.UnixNano() < num.guardedUntil); err != nil {
			return err
		}
		c.code, c.expires, c.sends = hash, now.Add(l.CodeTTL).UnixNano(), c.sends+1
		num.sends++
		if err := writePeerCode(ctx, tx, phone, peer, c); err != nil {
			return err
		}
		return writeNumber(ctx, tx, phone, num)
	})
	if err != nil && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrRateLimited) {
		err = fmt.Errorf("bootstrap: phone code: %w", err)
	}
	return code, err
}

// errGuarded says a number just became guarded.
var errGuarded = fmt.Errorf("%w: too many wrong codes for this number: it is guarded now, and the codes it gets are longer; ask for a new one", ErrCodeInvalid)

// checkPhone checks a code for a number and peer: a right one is consumed;
// a wrong one counts for the peer (locking it after MaxAttempts) and for
// the number (guarding it after MaxNumberAttempts).
func (s *Store) checkPhone(ctx context.Context, phone, peer string, code []byte, now time.Time, l PhoneLimits, equal func(a, b []byte) bool) error {
	var verdict error
	err := s.txLocked(ctx, []string{lockName("phone", phone)}, func(tx *sql.Tx) error {
		c, ok, err := readPeerCode(ctx, tx, phone, peer, now, l)
		switch {
		case err != nil:
			return err
		case !ok:
			verdict = ErrCodeInvalid
			return nil
		case now.UnixNano() < c.until:
			verdict = ErrLocked
			return nil
		case len(c.code) == 0 || now.UnixNano() >= c.expires:
			verdict = ErrCodeInvalid
			return nil
		case equal(c.code, code):
			c.code = []byte{}
			return writePeerCode(ctx, tx, phone, peer, c)
		}
		// Wrong: counted before anything else, so guessing costs even if
		// the process dies right after.
		num, err := readNumber(ctx, tx, phone, now, l)
		if err != nil {
			return err
		}
		c.attempts++
		num.wrong++
		verdict = ErrCodeInvalid
		if c.attempts >= l.MaxAttempts {
			c.until, c.code = now.Add(l.Lockout).UnixNano(), []byte{}
			verdict = fmt.Errorf("%w: %d wrong codes from this node", ErrLocked, c.attempts)
		}
		if err := writePeerCode(ctx, tx, phone, peer, c); err != nil {
			return err
		}
		if num.wrong >= l.MaxNumberAttempts && now.UnixNano() >= num.guardedUntil {
			num.guardedUntil = now.Add(l.GuardFor).UnixNano()
			if _, err := tx.ExecContext(ctx, `UPDATE phone_codes SET code = ? WHERE phone = ?`, []byte{}, phone); err != nil {
				return err
			}
			if verdict == ErrCodeInvalid {
				verdict = errGuarded
			}
		}
		return writeNumber(ctx, tx, phone, num)
	})
	if err != nil {
		return fmt.Errorf("bootstrap: phone code: %w", err)
	}
	return verdict
}

// handleTaken reports whether another account of provider shows handle.
func (s *Store) handleTaken(ctx context.Context, provider, handle, subject string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE provider = ? AND handle = ? AND subject != ?`, provider, handle, subject).Scan(&n)
	return n > 0, err
}
