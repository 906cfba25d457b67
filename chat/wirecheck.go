package chat

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pbwire"
)

// Every peer must judge a message alike, whatever version of chat it runs:
// a message that one peer relays and the next rejects costs the relay its
// peer score (PubSubOptions). The generated decoder (proto/chatpb) is more
// lenient than the hand-written one of chat 1.0.0 was: it keeps a known
// field sent with another wire type as an unknown field, skips groups,
// keeps only the last of several bodies or of several occurrences of a
// field, and merges a message field sent twice. So before it decodes,
// checkWire walks the bytes field by field as they came and refuses what
// 1.0.0 refused:
//
//   - a known field with another wire type than the schema's;
//   - a group, known or not (pbwire.EachField);
//   - a second field of a oneof (a second body in an Envelope);
//   - each occurrence of a field whose value breaks its limit
//     (fieldChecks), so a bad first occurrence is refused even when a
//     good one follows, as 1.0.0 did.
//
// What concerns a whole message (a comment needs an ID, a report its
// comment) is checked on the decoded message (codec.go). v1_test.go holds
// the result to 1.0.0's decoder, kept there frozen, verdict for verdict.
// Two differences remain, both in what only the broadcaster can send: a
// message field sent twice, which only a jury call in an action can be
// (1.0.0 took the second, proto would merge them; refused here),
// and a beat's 32-bit count past 2^32-1 (1.0.0 read 2^32-1; the generated
// code reads it modulo 2^32). No encoder writes either.
//
// It also reports whether b holds a field numbered past
// protowire.MaxValidNumber (up to 2^31-1, which 1.0.0 skipped as unknown
// and the generated decoder refuses), for decodeMessage to drop.
func checkWire(b []byte, md protoreflect.MessageDescriptor) (far bool, err error) {
	bodies := 0
	var messages map[protowire.Number]bool
	err = pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			far = far || num > protowire.MaxValidNumber
			return nil // unknown: skipped, for forward compatibility
		}
		if want := wireType(fd); typ != want {
			if lateFields[fd.FullName()] {
				return nil // 1.0.0 skipped it; the generated code keeps it as unknown
			}
			return fmt.Errorf("field %d: wire type %d, want %d", num, typ, want)
		}
		if fd.ContainingOneof() != nil {
			if bodies++; bodies > 1 {
				return fmt.Errorf("more than one body")
			}
		}
		if c := fieldChecks[fd.FullName()]; c != nil {
			if err := c(v, raw); err != nil {
				return fmt.Errorf("field %d: %w", num, err)
			}
		}
		if fd.FullName() == requestAction {
			// 1.0.0 decoded each occurrence of a request's action (an
			// Action in bytes, as a signed one is, though unsigned).
			if _, err := decodeAction(raw); err != nil {
				return fmt.Errorf("field %d: %w", num, err)
			}
		}
		if fd.Kind() != protoreflect.MessageKind {
			return nil
		}
		if fd.Cardinality() != protoreflect.Repeated {
			if messages[num] {
				return fmt.Errorf("field %d twice", num)
			}
			if messages == nil {
				messages = map[protowire.Number]bool{}
			}
			messages[num] = true
		}
		f, err := checkWire(raw, fd.Message())
		if err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
		far = far || f
		return nil
	})
	return far, err
}

// withoutFarFields returns a copy of b, which checkWire accepted, without
// the fields numbered past protowire.MaxValidNumber, at any depth. Only a
// message made to probe decoders has any.
func withoutFarFields(b []byte, md protoreflect.MessageDescriptor) []byte {
	var out []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil
		}
		field := b[:n+m]
		b = b[n+m:]
		fd := md.Fields().ByNumber(num)
		switch {
		case num > protowire.MaxValidNumber:
		case fd != nil && fd.Kind() == protoreflect.MessageKind:
			raw, _ := protowire.ConsumeBytes(field[n:])
			out = protowire.AppendTag(out, num, protowire.BytesType)
			out = protowire.AppendBytes(out, withoutFarFields(raw, fd.Message()))
		default:
			out = append(out, field...)
		}
	}
	return out
}

// requestAction is the bytes field of a moderator's request that holds an
// encoded Action.
const requestAction protoreflect.FullName = "peerscope.chat.v1.Request.action"

// wireType is the wire type of a field of the chat schema, which has
// neither fixed-width nor packed fields.
func wireType(fd protoreflect.FieldDescriptor) protowire.Type {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	}
	return protowire.VarintType
}

// lateFields are the fields added since 1.0.0, which 1.0.0 skips as
// unknown whatever they hold: no value of theirs, nor another wire type, is
// refused (the decoded message reads them as absent, or clamps them), so
// that old and new peers judge a message alike.
var lateFields = map[protoreflect.FullName]bool{
	"peerscope.chat.v1.Heart.at":  true,
	"peerscope.chat.v1.Beat.edge": true,
}

// fieldCheck checks one occurrence of a field as it came on the wire: v is
// a varint field's value (all 64 bits, before the generated code narrows
// it to its type), raw a length-delimited field's bytes.
type fieldCheck func(v uint64, raw []byte) error

// fieldChecks are the limits of the schema (proto/chat.proto) that hold
// for each occurrence of a field. TestFieldChecksNameFields checks that
// every key names a field.
var fieldChecks = map[protoreflect.FullName]fieldCheck{
	"peerscope.chat.v1.Envelope.broadcast":   checkText(1, maxStringLen, false),
	"peerscope.chat.v1.Envelope.action":      checkSize(maxActionSize+256, ErrTooLarge),
	"peerscope.chat.v1.Comment.text":         checkText(0, MaxCommentBytes, true),
	"peerscope.chat.v1.Comment.attestation":  checkSize(maxAttestationSize, nil),
	"peerscope.chat.v1.Heart.count":          checkRange(1, MaxHearts),
	"peerscope.chat.v1.Presence.state":       checkRange(1, maxPresence),
	"peerscope.chat.v1.Presence.attestation": checkSize(maxAttestationSize, nil),
	"peerscope.chat.v1.Report.author":        checkPeer,
	"peerscope.chat.v1.Beat.digest":          checkSize(maxDigestLen, nil),
	"peerscope.chat.v1.Signed.signature":     checkSize(256, nil),
	"peerscope.chat.v1.Action.broadcast":     checkText(0, maxStringLen, false),
	"peerscope.chat.v1.Action.op":            checkRange(1, uint64(maxOp)-1),
	"peerscope.chat.v1.Action.target":        checkText(0, maxStringLen, false),
	"peerscope.chat.v1.Action.until":         checkNotNegative,
	"peerscope.chat.v1.Action.list":          checkText(1, maxAccountKeyLen, false),
	"peerscope.chat.v1.Call.author":          checkPeer,
	"peerscope.chat.v1.Call.text":            checkText(0, MaxCommentBytes, true),
	"peerscope.chat.v1.Call.deadline":        checkNotNegative,
	"peerscope.chat.v1.Call.jurors":          checkPeer,
	"peerscope.chat.v1.LogEntry.author":      checkPeer,
	"peerscope.chat.v1.LogEntry.text":        checkText(0, MaxCommentBytes, true),
	"peerscope.chat.v1.LogEntry.provider":    checkText(0, maxAvatarLen, false),
	"peerscope.chat.v1.LogEntry.account":     checkText(0, maxAvatarLen, false),
	"peerscope.chat.v1.LogEntry.handle":      checkText(0, maxAvatarLen, false),
	"peerscope.chat.v1.LogEntry.name":        checkText(0, maxAvatarLen, false),
	"peerscope.chat.v1.LogEntry.avatar":      checkText(0, maxAvatarLen, false),
}

// checkText allows minLen to maxLen bytes of validText.
func checkText(minLen, maxLen int, multiline bool) fieldCheck {
	return func(_ uint64, raw []byte) error {
		if len(raw) < minLen || len(raw) > maxLen || !validText(raw, multiline) {
			return fmt.Errorf("bad text of %d bytes", len(raw))
		}
		return nil
	}
}

// checkSize allows at most maxLen bytes; past it, the error wraps tooLarge
// when set.
func checkSize(maxLen int, tooLarge error) fieldCheck {
	return func(_ uint64, raw []byte) error {
		if len(raw) <= maxLen {
			return nil
		}
		if tooLarge != nil {
			return fmt.Errorf("%w: %d bytes", tooLarge, len(raw))
		}
		return fmt.Errorf("%d bytes, more than %d", len(raw), maxLen)
	}
}

// checkRange allows lo ≤ v ≤ hi.
func checkRange(lo, hi uint64) fieldCheck {
	return func(v uint64, _ []byte) error {
		if v < lo || v > hi {
			return fmt.Errorf("value %d out of range", v)
		}
		return nil
	}
}

func checkNotNegative(v uint64, _ []byte) error {
	if int64(v) < 0 {
		return fmt.Errorf("negative time")
	}
	return nil
}

func checkPeer(_ uint64, raw []byte) error {
	_, err := identity.DecodePeer(raw)
	return err
}
