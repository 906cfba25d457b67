package audience

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// MaxTokenSize bounds a signed membership token.
const MaxTokenSize = 1 << 10

// A Token is the broadcaster's word that a peer may join a private
// broadcast's tree: every parent checks it when the peer attaches (Verify)
// and again against each newer roster (Roster.Admits). It names the roster
// version that admitted the peer and expires, so a removed member's token
// stops working even at a parent that never sees the new roster.
type Token struct {
	Broadcast     string
	Peer          peer.ID
	RosterVersion uint64
	Issued        time.Time
	Expires       time.Time
	Signature     []byte

	body []byte
}

// Sign signs the token with the broadcast's key, checking its fields.
func (t *Token) Sign(broadcaster crypto.PrivKey) error {
	s, err := broadcasterSigner(broadcaster, t.Broadcast)
	if err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return fmt.Errorf("%w: token: %w", ErrMalformed, err)
	}
	t.body, err = deterministic.Marshal(&audiencepb.MembershipToken{
		Broadcast: t.Broadcast, Peer: []byte(t.Peer), RosterVersion: t.RosterVersion,
		Issued: pbwire.UnixNano(t.Issued), Expires: pbwire.UnixNano(t.Expires),
	})
	if err != nil {
		return fmt.Errorf("%w: token: %w", ErrMalformed, err)
	}
	t.Signature = s.sign(membershipDomain, t.body)
	return nil
}

func (t *Token) check() error {
	if err := checkBroadcast(t.Broadcast); err != nil {
		return err
	}
	switch {
	case t.Peer == "":
		return fmt.Errorf("no peer")
	case t.RosterVersion == 0:
		return fmt.Errorf("roster version 0")
	case t.Issued.IsZero() || !t.Expires.After(t.Issued):
		return fmt.Errorf("expires %v is not after issued %v", t.Expires, t.Issued)
	}
	return nil
}

// Marshal returns the signed token's wire form.
func (t *Token) Marshal() []byte { return marshalSigned(t.body, t.Signature) }

// ParseToken decodes a signed token and checks its form, not its
// signature: see Verify.
func ParseToken(b []byte) (*Token, error) {
	var pb audiencepb.MembershipToken
	body, sig, err := parseSigned(b, MaxTokenSize, &pb, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: token: %w", ErrMalformed, err)
	}
	t := &Token{Broadcast: pb.Broadcast, RosterVersion: pb.RosterVersion, Issued: pbwire.FromUnixNano(pb.Issued),
		Expires: pbwire.FromUnixNano(pb.Expires), Signature: sig, body: body}
	if t.Peer, err = decodePeer(pb.Peer); err != nil {
		return nil, fmt.Errorf("%w: token: %w", ErrMalformed, err)
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("%w: token: %w", ErrMalformed, err)
	}
	return t, nil
}

// Verify checks that the token is of broadcast, signed by its broadcaster,
// presented by the peer it names and not expired at now.
func (t *Token) Verify(broadcast string, p peer.ID, now time.Time) error {
	if t.Broadcast != broadcast {
		return fmt.Errorf("%w: a token of %q", ErrWrongBroadcast, clip(t.Broadcast))
	}
	if t.body == nil {
		return fmt.Errorf("%w: token never signed", ErrBadSignature)
	}
	if err := verifyBroadcaster(t.Broadcast, membershipDomain, t.body, t.Signature); err != nil {
		return fmt.Errorf("token of %s: %w", t.Peer, err)
	}
	if t.Peer != p {
		return fmt.Errorf("%w: a token of %s presented by %s", ErrWrongPeer, t.Peer, p)
	}
	if !now.Before(t.Expires) {
		return fmt.Errorf("%w: token of %s at %s", ErrExpired, t.Peer, t.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}
