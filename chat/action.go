package chat

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
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

// action is one moderation action (see the schema in wire.go).
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

func (a *action) marshal(b []byte) []byte {
	b = pbwire.AppendString(b, 1, a.Broadcast)
	b = pbwire.AppendVarint(b, 2, a.Seq)
	b = pbwire.AppendVarint(b, 3, uint64(a.Op))
	b = pbwire.AppendString(b, 4, a.Target)
	b = pbwire.AppendBool(b, 5, a.On)
	b = pbwire.AppendVarint(b, 6, uint64(a.Until))
	for _, s := range a.List {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	if c := a.Call; c != nil {
		var s []byte
		s = pbwire.AppendBytes(s, 1, []byte(c.Author))
		s = pbwire.AppendVarint(s, 2, c.Comment)
		s = pbwire.AppendString(s, 3, c.Text)
		s = pbwire.AppendVarint(s, 4, uint64(c.Deadline))
		for _, j := range c.Jurors {
			s = protowire.AppendTag(s, 5, protowire.BytesType)
			s = protowire.AppendBytes(s, []byte(j))
		}
		b = appendMessage(b, 8, s)
	}
	return b
}

// unmarshal decodes an action and checks that its fields fit its Op. It
// does not require Broadcast and Seq (a moderator's request has neither).
func (a *action) unmarshal(b []byte) error {
	*a = action{}
	if len(b) > maxActionSize {
		return fmt.Errorf("%w: action of %d bytes", ErrTooLarge, len(b))
	}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 8, 1, 4, 7, 8); err != nil {
			return err
		}
		switch num {
		case 1:
			if len(raw) > maxStringLen || !validText(raw, false) {
				return fmt.Errorf("bad broadcast ID")
			}
			a.Broadcast = string(raw)
		case 2:
			a.Seq = v
		case 3:
			if v == 0 || v >= uint64(maxOp) {
				return fmt.Errorf("unknown op %d", v)
			}
			a.Op = Op(v)
		case 4:
			if len(raw) > maxStringLen || !validText(raw, false) {
				return fmt.Errorf("bad target")
			}
			a.Target = string(raw)
		case 5:
			a.On = v != 0
		case 6:
			if int64(v) < 0 {
				return fmt.Errorf("negative time")
			}
			a.Until = int64(v)
		case 7:
			if len(a.List) >= MaxFollows {
				return fmt.Errorf("list longer than %d", MaxFollows)
			}
			if len(raw) == 0 || len(raw) > maxAccountKeyLen || !validText(raw, false) {
				return fmt.Errorf("bad list entry")
			}
			a.List = append(a.List, string(raw))
		case 8:
			a.Call = new(wireCall)
			return a.Call.unmarshal(raw)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.check()
}

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

func (c *wireCall) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 5, 1, 3, 5); err != nil {
			return err
		}
		switch num {
		case 1:
			id, err := decodePeer(raw)
			if err != nil {
				return err
			}
			c.Author = id
		case 2:
			c.Comment = v
		case 3:
			if len(raw) > MaxCommentBytes || !validText(raw, true) {
				return fmt.Errorf("bad call text")
			}
			c.Text = string(raw)
		case 4:
			if int64(v) < 0 {
				return fmt.Errorf("negative deadline")
			}
			c.Deadline = int64(v)
		case 5:
			if len(c.Jurors) >= MaxJury {
				return fmt.Errorf("more than %d jurors", MaxJury)
			}
			id, err := decodePeer(raw)
			if err != nil {
				return err
			}
			c.Jurors = append(c.Jurors, id)
		}
		return nil
	})
	if err == nil && len(c.Jurors) == 0 {
		err = fmt.Errorf("a jury of nobody")
	}
	return err
}

// signedAction is an action with the bytes its signature covers, so that
// it is passed on (and synced to joiners) exactly as signed.
type signedAction struct {
	action
	body []byte
	sig  []byte
}

func (s *signedAction) marshal(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, s.body)
	return pbwire.AppendBytes(b, 2, s.sig)
}

func (s *signedAction) unmarshal(b []byte) error {
	*s = signedAction{}
	if len(b) > maxActionSize+256 {
		return fmt.Errorf("%w: signed action of %d bytes", ErrTooLarge, len(b))
	}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			s.body = raw
		case 2:
			if len(raw) > 256 {
				return fmt.Errorf("signature of %d bytes", len(raw))
			}
			s.sig = raw
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(s.sig) == 0 {
		return fmt.Errorf("unsigned action")
	}
	if err := s.action.unmarshal(s.body); err != nil {
		return err
	}
	if s.Broadcast == "" || s.Seq == 0 {
		return fmt.Errorf("action without broadcast or sequence number")
	}
	return nil
}

// decodeSigned decodes one signed action (a sync frame, or the body of an
// envelope), wrapping errors in ErrMalformed.
func decodeSigned(b []byte) (*signedAction, error) {
	s := new(signedAction)
	if err := s.unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: action: %w", ErrMalformed, err)
	}
	return s, nil
}

// signAction signs a with the broadcaster's key.
func signAction(a action, key crypto.PrivKey) (*signedAction, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	body := a.marshal(nil)
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
