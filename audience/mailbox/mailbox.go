// Package mailbox is where a private broadcast's key material waits for its
// members: the broadcaster leaves the signed roster, each member device's
// membership token and the epochs' bundles (already wrapped for one device
// key each), and members take what is theirs. The bootstrap's
// private-audience routes are its real home (they hold what they cannot
// read: see audience's doc); Memory is the in-process one that tests and a
// single-machine setup use. The node asks only what Mailbox says.
//
//	broadcaster: PutRoster, PutToken, PutBundle ─► mailbox
//	member:      Roster, Token(self), Bundles(device, after) ◄─ mailbox
package mailbox

import (
	"context"
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
)

// Errors of a mailbox. A real one maps its answers onto them (404 → ErrNotFound,
// 403 → ErrForbidden), so the node tells "not yet" from "never".
var (
	// ErrNotFound is returned when the mailbox holds nothing of the kind
	// asked for (no roster yet, no token for this peer).
	ErrNotFound = errors.New("mailbox: not found")
	// ErrForbidden is returned when the asker may not have it: a
	// non-member asking for a broadcast's bundles.
	ErrForbidden = errors.New("mailbox: forbidden")
	// ErrRefused is returned for what the mailbox will not take: a roster
	// that does not follow the one held, a token or bundle for a device
	// the roster does not list, anything not signed by the broadcaster.
	ErrRefused = errors.New("mailbox: refused")
)

// Mailbox holds a private broadcast's signed roster, tokens and bundles.
// Every object is the audience package's, signed; a mailbox checks what
// it is given (a real one must: it is reachable by anyone) and hands out
// what it holds unchanged. Methods are safe for concurrent use.
type Mailbox interface {
	// PutRoster keeps r as its broadcast's roster if it verifies and
	// follows the one held (ErrRefused otherwise).
	PutRoster(ctx context.Context, r *audience.Roster) error
	// PutToken keeps a member device's membership token, replacing an
	// older one for the same peer.
	PutToken(ctx context.Context, t *audience.Token) error
	// PutBundle keeps an epoch's bundle for one device key.
	PutBundle(ctx context.Context, b *audience.Bundle) error

	// Roster returns the newest roster of broadcast (ErrNotFound).
	Roster(ctx context.Context, broadcast string) (*audience.Roster, error)
	// Token returns p's newest token for broadcast (ErrNotFound).
	Token(ctx context.Context, broadcast string, p peer.ID) (*audience.Token, error)
	// Bundles returns the bundles of broadcast wrapped for device whose
	// epoch is above after, in epoch order.
	Bundles(ctx context.Context, broadcast string, device audience.Fingerprint, after uint32) ([]*audience.Bundle, error)
}

// Batcher is a Mailbox that takes many tokens or bundles in one call: one
// across the network (the bootstrap's takes up to 128 a request), where a
// rekey for a large audience would otherwise be a request per device.
type Batcher interface {
	PutTokens(ctx context.Context, ts []*audience.Token) error
	PutBundles(ctx context.Context, bs []*audience.Bundle) error
}

// PutTokens leaves ts in mb: in one call if mb is a Batcher, else one by
// one.
func PutTokens(ctx context.Context, mb Mailbox, ts []*audience.Token) error {
	if len(ts) == 0 {
		return nil
	}
	if b, ok := mb.(Batcher); ok {
		return b.PutTokens(ctx, ts)
	}
	for _, t := range ts {
		if err := mb.PutToken(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// PutBundles leaves bs in mb: in one call if mb is a Batcher, else one by
// one.
func PutBundles(ctx context.Context, mb Mailbox, bs []*audience.Bundle) error {
	if len(bs) == 0 {
		return nil
	}
	if b, ok := mb.(Batcher); ok {
		return b.PutBundles(ctx, bs)
	}
	for _, bd := range bs {
		if err := mb.PutBundle(ctx, bd); err != nil {
			return err
		}
	}
	return nil
}
