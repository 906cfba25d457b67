package chat

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
)

// The wire format is protobuf, written and read by hand with protowire as
// in mesh/codec.go. This schema is the contract: add fields, never
// renumber them. Every pubsub message on a room's topic is one Envelope:
//
//	message Envelope {
//	  string broadcast = 1;   // the room's broadcast ID (no replay across rooms)
//	  int64 sent = 2;         // the sender's clock, Unix ns
//	  // exactly one of:
//	  Comment comment = 3;  Heart heart = 4;  Presence presence = 5;
//	  Signed action = 6;    Report report = 7;  Vote vote = 8;
//	  Beat beat = 9;        Request request = 10;
//	}
//	message Comment  { uint64 id = 1; string text = 2; int64 at = 3; bytes attestation = 4; }
//	message Heart    { uint32 count = 1; }
//	message Presence { uint32 state = 1; bytes attestation = 2; reserved 3; }
//	message Report   { bytes author = 1; uint64 comment = 2; }
//	message Vote     { uint64 call = 1; bool guilty = 2; }
//	message Beat     { uint32 audience = 1; uint64 hearts = 2; uint32 presence_ms = 3;
//	                   uint32 heart_ms = 4; uint64 mod_seq = 5; bytes digest = 6; }
//	message Request  { bytes action = 1; }          // an Action, unsigned
//	message Signed   { bytes action = 1; bytes signature = 2; }
//	message Action   { string broadcast = 1; uint64 seq = 2; uint32 op = 3;
//	                   string target = 4; bool on = 5; int64 until = 6;
//	                   repeated string list = 7; Call call = 8; }
//	message Call     { bytes author = 1; uint64 comment = 2; string text = 3;
//	                   int64 deadline = 4; repeated bytes jurors = 5; }
//
// Peer IDs travel as their bytes (peer.ID). The attestation's own schema is
// in identity/attestation.go. A known field with the wrong wire type is refused;
// unknown fields are skipped, for forward compatibility.

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
	maxPeerIDLen       = 64  // the bytes of a peer ID (ed25519 IDs are 38)
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

type wireHeart struct{ Count uint32 }

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

// marshal appends the envelope's encoding to b.
func (e envelope) marshal(b []byte) []byte {
	b = pbwire.AppendString(b, 1, e.Broadcast)
	b = pbwire.AppendVarint(b, 2, uint64(e.Sent))
	switch {
	case e.Comment != nil:
		c := e.Comment
		var s []byte
		s = pbwire.AppendVarint(s, 1, c.ID)
		s = pbwire.AppendString(s, 2, c.Text)
		s = pbwire.AppendVarint(s, 3, uint64(c.At))
		s = pbwire.AppendBytes(s, 4, c.Attestation)
		b = appendMessage(b, 3, s)
	case e.Heart != nil:
		b = appendMessage(b, 4, pbwire.AppendVarint(nil, 1, uint64(e.Heart.Count)))
	case e.Presence != nil:
		p := e.Presence
		var s []byte
		s = pbwire.AppendVarint(s, 1, uint64(p.State))
		s = pbwire.AppendBytes(s, 2, p.Attestation)
		b = appendMessage(b, 5, s)
	case e.Action != nil:
		b = appendMessage(b, 6, e.Action.marshal(nil))
	case e.Report != nil:
		var s []byte
		s = pbwire.AppendBytes(s, 1, []byte(e.Report.Author))
		s = pbwire.AppendVarint(s, 2, e.Report.Comment)
		b = appendMessage(b, 7, s)
	case e.Vote != nil:
		var s []byte
		s = pbwire.AppendVarint(s, 1, e.Vote.Call)
		s = pbwire.AppendBool(s, 2, e.Vote.Guilty)
		b = appendMessage(b, 8, s)
	case e.Beat != nil:
		t := e.Beat
		var s []byte
		s = pbwire.AppendVarint(s, 1, uint64(t.Audience))
		s = pbwire.AppendVarint(s, 2, t.Hearts)
		s = pbwire.AppendVarint(s, 3, uint64(t.PresenceMS))
		s = pbwire.AppendVarint(s, 4, uint64(t.HeartMS))
		s = pbwire.AppendVarint(s, 5, t.ModSeq)
		s = pbwire.AppendBytes(s, 6, t.Digest)
		b = appendMessage(b, 9, s)
	case e.Request != nil:
		b = appendMessage(b, 10, pbwire.AppendBytes(nil, 1, e.Request.marshal(nil)))
	}
	return b
}

// unmarshal decodes an envelope. It checks every size and field but no
// signature and no state: that is the validator's work. Slices alias b.
func (e *envelope) unmarshal(b []byte) error {
	*e = envelope{}
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	bodies := 0
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 10, 1, 3, 4, 5, 6, 7, 8, 9, 10); err != nil {
			return err
		}
		if num >= 3 && num <= 10 {
			bodies++
			if bodies > 1 {
				return fmt.Errorf("more than one body")
			}
		}
		var err error
		switch num {
		case 1:
			if len(raw) == 0 || len(raw) > maxStringLen || !validText(raw, false) {
				return fmt.Errorf("bad broadcast ID")
			}
			e.Broadcast = string(raw)
		case 2:
			e.Sent = int64(v)
		case 3:
			e.Comment = new(wireComment)
			err = e.Comment.unmarshal(raw)
		case 4:
			e.Heart = new(wireHeart)
			err = e.Heart.unmarshal(raw)
		case 5:
			e.Presence = new(wirePresence)
			err = e.Presence.unmarshal(raw)
		case 6:
			e.Action = new(signedAction)
			err = e.Action.unmarshal(raw)
		case 7:
			e.Report = new(wireReport)
			err = e.Report.unmarshal(raw)
		case 8:
			e.Vote = new(wireVote)
			err = e.Vote.unmarshal(raw)
		case 9:
			e.Beat = new(wireBeat)
			err = e.Beat.unmarshal(raw)
		case 10:
			e.Request = new(action)
			err = pbwire.EachField(raw, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
				if err := pbwire.CheckWireType(num, typ, 1, 1); err != nil {
					return err
				}
				if num == 1 {
					return e.Request.unmarshal(raw)
				}
				return nil
			})
			if err == nil && e.Request.Op == 0 {
				err = fmt.Errorf("request without an action")
			}
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
		return nil
	})
	if err == nil {
		switch {
		case e.Broadcast == "":
			err = fmt.Errorf("no broadcast ID")
		case e.Sent <= 0:
			err = fmt.Errorf("no send time")
		case bodies == 0:
			err = fmt.Errorf("no body")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func (c *wireComment) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 4, 2, 4); err != nil {
			return err
		}
		switch num {
		case 1:
			c.ID = v
		case 2:
			if len(raw) > MaxCommentBytes || !validText(raw, true) {
				return fmt.Errorf("bad comment text")
			}
			c.Text = string(raw)
		case 3:
			c.At = int64(v)
		case 4:
			if len(raw) > maxAttestationSize {
				return fmt.Errorf("attestation of %d bytes", len(raw))
			}
			if len(raw) > 0 {
				c.Attestation = raw
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case c.ID == 0:
		return fmt.Errorf("comment without an ID")
	case len(bytes.TrimSpace([]byte(c.Text))) == 0:
		return fmt.Errorf("empty comment")
	case c.At < 0:
		return fmt.Errorf("negative stream time")
	}
	return nil
}

func (h *wireHeart) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		if err := pbwire.CheckWireType(num, typ, 1); err != nil {
			return err
		}
		if num == 1 {
			if v == 0 || v > MaxHearts {
				return fmt.Errorf("heart count %d", v)
			}
			h.Count = uint32(v)
		}
		return nil
	})
	if err == nil && h.Count == 0 {
		err = fmt.Errorf("no hearts")
	}
	return err
}

func (p *wirePresence) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			if v == 0 || v > maxPresence {
				return fmt.Errorf("presence state %d", v)
			}
			p.State = uint32(v)
		case 2:
			if len(raw) > maxAttestationSize {
				return fmt.Errorf("attestation of %d bytes", len(raw))
			}
			if len(raw) > 0 {
				p.Attestation = raw
			}
		}
		return nil
	})
	if err == nil && p.State == 0 {
		err = fmt.Errorf("no presence state")
	}
	return err
}

func (r *wireReport) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1); err != nil {
			return err
		}
		switch num {
		case 1:
			id, err := decodePeer(raw)
			if err != nil {
				return err
			}
			r.Author = id
		case 2:
			r.Comment = v
		}
		return nil
	})
	if err == nil && (r.Author == "" || r.Comment == 0) {
		err = fmt.Errorf("report without a comment")
	}
	return err
}

func (v *wireVote) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, x uint64, _ []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			v.Call = x
		case 2:
			v.Guilty = x != 0
		}
		return nil
	})
	if err == nil && v.Call == 0 {
		err = fmt.Errorf("vote without a call")
	}
	return err
}

func (t *wireBeat) unmarshal(b []byte) error {
	return pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 6, 6); err != nil {
			return err
		}
		switch num {
		case 1:
			t.Audience = uint32(min(v, 1<<32-1))
		case 2:
			t.Hearts = v
		case 3:
			t.PresenceMS = uint32(min(v, 1<<32-1))
		case 4:
			t.HeartMS = uint32(min(v, 1<<32-1))
		case 5:
			t.ModSeq = v
		case 6:
			if len(raw) > maxDigestLen {
				return fmt.Errorf("digest of %d bytes", len(raw))
			}
			if len(raw) > 0 {
				t.Digest = raw
			}
		}
		return nil
	})
}

// decodePeer checks that b is the bytes of a peer ID.
func decodePeer(b []byte) (peer.ID, error) {
	if len(b) == 0 || len(b) > maxPeerIDLen {
		return "", fmt.Errorf("peer ID of %d bytes", len(b))
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("peer ID: %w", err)
	}
	return id, nil
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

// appendMessage appends an embedded message, even an empty one (its
// presence is what says which body an envelope carries).
func appendMessage(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
