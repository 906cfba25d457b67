package chat

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Op is a kind of moderation action.
type Op uint8

// The moderation actions. Each is signed by the broadcaster and carries a
// sequence number; for each (Op, Target) the action with the highest
// sequence number is in force, so a replayed old action never undoes a
// newer one.
const (
	// OpCommentsOff turns comments off (On) or on again, for everyone but
	// the broadcaster and its moderators.
	OpCommentsOff Op = 1 + iota
	// OpFollowersOnly limits comments (On) to the accounts in its list:
	// the people the broadcaster follows.
	OpFollowersOnly
	// OpBlock blocks a user (On) or unblocks it: nothing it sends on the
	// topic reaches anybody.
	OpBlock
	// OpDelete deletes a comment.
	OpDelete
	// OpModerator names a moderator (On) or revokes one.
	OpModerator
	// OpMute mutes a user until a time (a jury's verdict): no comments, no
	// reports.
	OpMute
	// OpJury calls a jury on a reported comment (an event, not state).
	OpJury
	maxOp
)

var opNames = [maxOp]string{"", "comments-off", "followers-only", "block", "delete", "moderator", "mute", "jury"}

func (o Op) String() string {
	if o > 0 && o < maxOp {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// MuteForever is the Until of a mute for the rest of the broadcast.
const MuteForever = math.MaxInt64

// actionDomain separates action signatures from every other use of the
// broadcaster's key (chunks, announcements, pubsub messages).
const actionDomain = "peerscope/chat/action/1\x00"

// action is one moderation action (Action in proto/chat.proto).
type action struct {
	Broadcast string
	Seq       uint64
	Op        Op
	// Target is a user ("peer:<ID>" or "acct:<provider>:<account>") for
	// block and mute, a peer ("peer:<ID>") for moderator, a comment
	// ("<author ID>/<seq>") for delete and jury, empty for the switches.
	Target string
	On     bool
	Until  int64 // mute: Unix ns, or MuteForever
	List   []string
	Call   *wireCall
}

// wireCall is a jury call: the reported comment and the jurors.
type wireCall struct {
	Author   peer.ID
	Comment  uint64
	Text     string
	Deadline int64
	Jurors   []peer.ID
}

// key is the register the action writes: one per (Op, Target).
func (a *action) key() string { return strconv.Itoa(int(a.Op)) + "|" + a.Target }

// check says whether the action's fields fit its op.
func (a *action) check() error {
	if a.Op == 0 {
		return fmt.Errorf("no op")
	}
	if a.Op != OpFollowersOnly && len(a.List) > 0 {
		return fmt.Errorf("%v with a list", a.Op)
	}
	if a.Op != OpJury && a.Call != nil {
		return fmt.Errorf("%v with a call", a.Op)
	}
	if a.Op != OpMute && a.Until != 0 {
		return fmt.Errorf("%v with an until", a.Op)
	}
	switch a.Op {
	case OpCommentsOff, OpFollowersOnly:
		if a.Target != "" {
			return fmt.Errorf("%v with a target", a.Op)
		}
		for _, s := range a.List {
			if !strings.Contains(s, ":") {
				return fmt.Errorf("list entry %q is not provider:account", s)
			}
		}
	case OpBlock, OpMute:
		if !validUser(a.Target) {
			return fmt.Errorf("bad user %q", a.Target)
		}
	case OpModerator:
		if _, ok := peerOfUser(a.Target); !ok {
			return fmt.Errorf("bad moderator %q", a.Target)
		}
	case OpDelete:
		if _, err := ParseCommentID(a.Target); err != nil {
			return err
		}
	case OpJury:
		id, err := ParseCommentID(a.Target)
		if err != nil {
			return err
		}
		if a.Call == nil {
			return fmt.Errorf("jury without a call")
		}
		if a.Call.Author != id.Author || a.Call.Comment != id.Seq {
			return fmt.Errorf("jury call does not match its target")
		}
	}
	return nil
}

// signedAction is an action with the bytes its signature covers, so that
// it is passed on (and synced to joiners) exactly as signed.
type signedAction struct {
	action
	body []byte
	sig  []byte
}

// signAction signs a with the broadcaster's key.
func signAction(a action, key crypto.PrivKey) (*signedAction, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	body, err := a.encode()
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(append([]byte(actionDomain), body...))
	if err != nil {
		return nil, err
	}
	return &signedAction{action: a, body: body, sig: sig}, nil
}

// verify checks the signature with the broadcaster's public key.
func (s *signedAction) verify(pub crypto.PubKey) error {
	ok, err := pub.Verify(append([]byte(actionDomain), s.body...), s.sig)
	if err != nil || !ok {
		return ErrBadSignature
	}
	return nil
}

// CommentID names a comment: its author and the author's sequence number
// for it.
type CommentID struct {
	Author peer.ID
	Seq    uint64
}

// String returns "<author>/<seq>", the form ParseCommentID reads.
func (c CommentID) String() string { return c.Author.String() + "/" + strconv.FormatUint(c.Seq, 10) }

// ParseCommentID parses the String form of a CommentID.
func ParseCommentID(s string) (CommentID, error) {
	a, n, ok := strings.Cut(s, "/")
	if !ok {
		return CommentID{}, fmt.Errorf("%w: comment ID %q", ErrMalformed, s)
	}
	p, err := peer.Decode(a)
	if err != nil {
		return CommentID{}, fmt.Errorf("%w: comment ID %q: %w", ErrMalformed, s, err)
	}
	if p.String() != a {
		return CommentID{}, fmt.Errorf("%w: comment ID %q: not the canonical peer ID", ErrMalformed, s)
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil || seq == 0 || strconv.FormatUint(seq, 10) != n {
		return CommentID{}, fmt.Errorf("%w: comment ID %q", ErrMalformed, s)
	}
	return CommentID{Author: p, Seq: seq}, nil
}

// A user, as moderation targets it, is a peer or an account: anonymous
// users are their peers; identified users are both, and block and mute
// name both, so that a new peer ID does not shed a verified account's
// block.
const (
	userPeerPrefix    = "peer:"
	userAccountPrefix = "acct:"
)

func userOfPeer(p peer.ID) string { return userPeerPrefix + p.String() }

func userOfAccount(accountKey string) string { return userAccountPrefix + accountKey }

func peerOfUser(u string) (peer.ID, bool) {
	s, ok := strings.CutPrefix(u, userPeerPrefix)
	if !ok {
		return "", false
	}
	p, err := peer.Decode(s)
	if err != nil || p.String() != s {
		return "", false
	}
	return p, true
}

func validUser(u string) bool {
	if _, ok := peerOfUser(u); ok {
		return true
	}
	acct, ok := strings.CutPrefix(u, userAccountPrefix)
	if !ok {
		return false
	}
	provider, account, ok := strings.Cut(acct, ":")
	return ok && provider != "" && account != "" && len(acct) <= maxAccountKeyLen
}
