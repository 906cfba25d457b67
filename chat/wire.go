package chat

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The wire format is protobuf: the schema, with the limits of each field,
// is proto/chat.proto, and the code that speaks it is generated
// (proto/chatpb); codec.go converts between it and the types here. Every
// pubsub message on a room's topic is one envelope, with exactly one body.

// Size limits. Every decoder enforces them.
const (
	// MaxMessageSize bounds an Envelope (a pubsub message's data).
	MaxMessageSize = 128 << 10
	// MaxCommentBytes bounds a comment's text, in bytes of UTF-8.
	MaxCommentBytes = 500
	// MaxHearts bounds the hearts one message may carry.
	MaxHearts = 1000
	// MaxFollows bounds the accounts a followers-only action may list.
	MaxFollows = 1000
	// MaxJury bounds a jury's size.
	MaxJury = 15

	maxActionSize      = 96 << 10
	maxAttestationSize = 2 << 10
	maxStringLen       = 512 // targets, broadcast IDs
	maxAccountKeyLen   = 80  // an entry of a follow list: provider:account
	maxDigestLen       = 32
)

type kind uint8

const (
	kindNone kind = iota
	kindComment
	kindHeart
	kindPresence
	kindAction
	kindReport
	kindVote
	kindBeat
	kindRequest
	numKinds
)

var kindNames = [numKinds]string{"none", "comment", "heart", "presence", "action", "report", "vote", "beat", "request"}

func (k kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// envelope is one decoded pubsub message; exactly one body is set.
type envelope struct {
	Broadcast string
	Sent      int64
	Comment   *wireComment
	Heart     *wireHeart
	Presence  *wirePresence
	Action    *signedAction
	Report    *wireReport
	Vote      *wireVote
	Beat      *wireBeat
	Request   *action
}

type wireComment struct {
	ID          uint64
	Text        string
	At          int64  // stream time, Unix ns; 0 = the send time
	Attestation []byte // a signed attestation, or nil
}

type wireHeart struct {
	Count uint32
	At    int64 // the moment its taps watched, Unix ns (their mean); 0: not said
}

// Presence states.
const (
	presenceJoin  = 1
	presenceBeat  = 2
	presenceLeave = 3
	maxPresence   = 3
)

type wirePresence struct {
	State       uint32
	Attestation []byte
}

type wireReport struct {
	Author  peer.ID
	Comment uint64
}

type wireVote struct {
	Call   uint64
	Guilty bool
}

type wireBeat struct {
	Audience   uint32
	Hearts     uint64
	PresenceMS uint32
	HeartMS    uint32
	ModSeq     uint64
	Digest     []byte
	Edge       uint64 // 1 + the broadcaster's newest sequence number; 0: not said
}

func (e *envelope) kind() kind {
	switch {
	case e.Comment != nil:
		return kindComment
	case e.Heart != nil:
		return kindHeart
	case e.Presence != nil:
		return kindPresence
	case e.Action != nil:
		return kindAction
	case e.Report != nil:
		return kindReport
	case e.Vote != nil:
		return kindVote
	case e.Beat != nil:
		return kindBeat
	case e.Request != nil:
		return kindRequest
	}
	return kindNone
}

// validText reports whether b is UTF-8 without control characters
// (newlines allowed when multiline).
func validText(b []byte, multiline bool) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r == '\n' && multiline {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError || (r >= 0x2028 && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
			return false // also line/paragraph separators and bidi overrides
		}
	}
	return true
}
