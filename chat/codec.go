package chat

import (
	"bytes"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/proto/chatpb"
)

// The codec: the chat's messages (wire.go, action.go) to and from the
// generated code of proto/chat.proto. Decoding is checkWire (the limits of
// each field as it came), then the generated decoder, then the checks of
// each message as a whole, here. Decoded slices do not alias the input.

// encode returns the envelope's encoding. It fails only for a string that
// is not UTF-8, which no peer would take either.
func (e *envelope) encode() ([]byte, error) {
	pb := &chatpb.Envelope{Broadcast: e.Broadcast, Sent: e.Sent}
	switch {
	case e.Comment != nil:
		c := e.Comment
		pb.Body = &chatpb.Envelope_Comment{Comment: &chatpb.Comment{Id: c.ID, Text: c.Text, At: c.At, Attestation: c.Attestation}}
	case e.Heart != nil:
		pb.Body = &chatpb.Envelope_Heart{Heart: &chatpb.Heart{Count: e.Heart.Count, At: e.Heart.At}}
	case e.Presence != nil:
		p := e.Presence
		pb.Body = &chatpb.Envelope_Presence{Presence: &chatpb.Presence{State: chatpb.PresenceState(p.State), Attestation: p.Attestation}}
	case e.Action != nil:
		pb.Body = &chatpb.Envelope_Action{Action: e.Action.pb()}
	case e.Report != nil:
		pb.Body = &chatpb.Envelope_Report{Report: &chatpb.Report{Author: []byte(e.Report.Author), Comment: e.Report.Comment}}
	case e.Vote != nil:
		pb.Body = &chatpb.Envelope_Vote{Vote: &chatpb.Vote{Call: e.Vote.Call, Guilty: e.Vote.Guilty}}
	case e.Beat != nil:
		t := e.Beat
		pb.Body = &chatpb.Envelope_Beat{Beat: &chatpb.Beat{Audience: t.Audience, Hearts: t.Hearts,
			PresenceMs: t.PresenceMS, HeartMs: t.HeartMS, ModSeq: t.ModSeq, Digest: t.Digest, Edge: t.Edge}}
	case e.Request != nil:
		a, err := e.Request.encode()
		if err != nil {
			return nil, err
		}
		pb.Body = &chatpb.Envelope_Request{Request: &chatpb.Request{Action: a}}
	}
	return encodeMessage(pb)
}

// unmarshal decodes an envelope. It checks every size and field but no
// signature and no state: that is the validator's work.
func (e *envelope) unmarshal(b []byte) error {
	*e = envelope{}
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	if err := e.decode(b); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func (e *envelope) decode(b []byte) error {
	var pb chatpb.Envelope
	if err := decodeMessage(b, &pb); err != nil {
		return err
	}
	e.Broadcast, e.Sent = pb.Broadcast, pb.Sent
	var err error
	switch body := pb.Body.(type) {
	case *chatpb.Envelope_Comment:
		e.Comment, err = commentFrom(body.Comment)
	case *chatpb.Envelope_Heart:
		e.Heart = &wireHeart{Count: body.Heart.Count, At: max(body.Heart.At, 0)}
		if e.Heart.Count == 0 {
			err = fmt.Errorf("no hearts")
		}
	case *chatpb.Envelope_Presence:
		p := body.Presence
		e.Presence = &wirePresence{State: uint32(p.State), Attestation: nilIfEmpty(p.Attestation)}
		if p.State == chatpb.PresenceState_PRESENCE_STATE_UNSPECIFIED {
			err = fmt.Errorf("no presence state")
		}
	case *chatpb.Envelope_Action:
		e.Action, err = signedFrom(body.Action)
	case *chatpb.Envelope_Report:
		e.Report = &wireReport{Author: peer.ID(body.Report.Author), Comment: body.Report.Comment}
		if e.Report.Author == "" || e.Report.Comment == 0 {
			err = fmt.Errorf("report without a comment")
		}
	case *chatpb.Envelope_Vote:
		e.Vote = &wireVote{Call: body.Vote.Call, Guilty: body.Vote.Guilty}
		if e.Vote.Call == 0 {
			err = fmt.Errorf("vote without a call")
		}
	case *chatpb.Envelope_Beat:
		t := body.Beat
		e.Beat = &wireBeat{Audience: t.Audience, Hearts: t.Hearts, PresenceMS: t.PresenceMs,
			HeartMS: t.HeartMs, ModSeq: t.ModSeq, Digest: nilIfEmpty(t.Digest), Edge: t.Edge}
	case *chatpb.Envelope_Request:
		e.Request, err = decodeAction(body.Request.Action)
	}
	switch {
	case err != nil:
		return fmt.Errorf("body: %w", err)
	case e.Broadcast == "":
		return fmt.Errorf("no broadcast ID")
	case e.Sent <= 0:
		return fmt.Errorf("no send time")
	case pb.Body == nil:
		return fmt.Errorf("no body")
	}
	return nil
}

func commentFrom(pb *chatpb.Comment) (*wireComment, error) {
	c := &wireComment{ID: pb.Id, Text: pb.Text, At: pb.At, Attestation: nilIfEmpty(pb.Attestation)}
	switch {
	case c.ID == 0:
		return nil, fmt.Errorf("comment without an ID")
	case len(bytes.TrimSpace([]byte(c.Text))) == 0:
		return nil, fmt.Errorf("empty comment")
	case c.At < 0:
		return nil, fmt.Errorf("negative stream time")
	}
	return c, nil
}

// encode returns the action's encoding: what the broadcaster signs, and
// what a moderator's request carries.
func (a *action) encode() ([]byte, error) { return encodeMessage(a.pb()) }

func (a *action) pb() *chatpb.Action {
	pb := &chatpb.Action{Broadcast: a.Broadcast, Seq: a.Seq, Op: chatpb.Op(a.Op), Target: a.Target,
		On: a.On, Until: a.Until, List: a.List}
	if c := a.Call; c != nil {
		pb.Call = &chatpb.Call{Author: []byte(c.Author), Comment: c.Comment, Text: c.Text, Deadline: c.Deadline}
		for _, j := range c.Jurors {
			pb.Call.Jurors = append(pb.Call.Jurors, []byte(j))
		}
	}
	return pb
}

// decodeAction decodes an action and checks that its fields fit its Op.
// It does not require Broadcast and Seq (a moderator's request has
// neither).
func decodeAction(b []byte) (*action, error) {
	if len(b) > maxActionSize {
		return nil, fmt.Errorf("%w: action of %d bytes", ErrTooLarge, len(b))
	}
	var pb chatpb.Action
	if err := decodeMessage(b, &pb); err != nil {
		return nil, err
	}
	if len(pb.List) > MaxFollows {
		return nil, fmt.Errorf("list longer than %d", MaxFollows)
	}
	a := &action{Broadcast: pb.Broadcast, Seq: pb.Seq, Op: Op(pb.Op), Target: pb.Target,
		On: pb.On, Until: pb.Until, List: pb.List}
	if c := pb.Call; c != nil {
		if len(c.Jurors) == 0 || len(c.Jurors) > MaxJury {
			return nil, fmt.Errorf("a jury of %d, not 1 to %d", len(c.Jurors), MaxJury)
		}
		a.Call = &wireCall{Author: peer.ID(c.Author), Comment: c.Comment, Text: c.Text, Deadline: c.Deadline}
		for _, j := range c.Jurors {
			a.Call.Jurors = append(a.Call.Jurors, peer.ID(j))
		}
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return a, nil
}

func (s *signedAction) pb() *chatpb.Signed {
	return &chatpb.Signed{Action: s.body, Signature: s.sig}
}

// encode returns the signed action as it travels in an envelope and in a
// state frame: its body as signed, and the signature.
func (s *signedAction) encode() []byte {
	b, err := encodeMessage(s.pb())
	if err != nil {
		return nil // only bytes fields: it cannot fail
	}
	return b
}

// decodeSigned decodes one signed action (a sync frame), wrapping errors
// in ErrMalformed.
func decodeSigned(b []byte) (*signedAction, error) {
	var pb chatpb.Signed
	var s *signedAction
	err := fieldChecks["peerscope.chat.v1.Envelope.action"](0, b) // its size limit
	if err == nil {
		err = decodeMessage(b, &pb)
	}
	if err == nil {
		s, err = signedFrom(&pb)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: action: %w", ErrMalformed, err)
	}
	return s, nil
}

func signedFrom(pb *chatpb.Signed) (*signedAction, error) {
	if len(pb.Signature) == 0 {
		return nil, fmt.Errorf("unsigned action")
	}
	a, err := decodeAction(pb.Action)
	if err != nil {
		return nil, err
	}
	if a.Broadcast == "" || a.Seq == 0 {
		return nil, fmt.Errorf("action without broadcast or sequence number")
	}
	return &signedAction{action: *a, body: pb.Action, sig: pb.Signature}, nil
}

// encodeMessage encodes m; it fails only for a string that is not UTF-8.
func encodeMessage(m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return b, nil
}

// decodeMessage checks b field by field (checkWire) and decodes it into m.
func decodeMessage(b []byte, m proto.Message) error {
	md := m.ProtoReflect().Descriptor()
	far, err := checkWire(b, md)
	if err != nil {
		return err
	}
	if far {
		b = withoutFarFields(b, md)
	}
	return proto.Unmarshal(b, m)
}

// nilIfEmpty returns nil for an empty field, as the messages keep absent
// bytes (the generated code decodes an empty field as an empty slice).
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
