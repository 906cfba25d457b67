package pbwire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// CheckKnownFields refuses a message decoded by the generated code in which
// a field its schema knows came with another wire type — here or in any
// message nested in it: the generated code keeps such a field among the
// unknown ones and reads it as absent, where a hand-written decoder refuses
// it (CheckWireType). Fields the schema does not know pass, for forward
// compatibility.
func CheckKnownFields(m proto.Message) error {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	b := r.GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if fd := fields.ByNumber(num); fd != nil {
			return fmt.Errorf("field %d (%s): wire type %d", num, fd.Name(), typ)
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Message() == nil || f.IsMap() || !r.Has(f) {
			continue
		}
		if !f.IsList() {
			if err := CheckKnownFields(r.Get(f).Message().Interface()); err != nil {
				return err
			}
			continue
		}
		list := r.Get(f).List()
		for j := range list.Len() {
			if err := CheckKnownFields(list.Get(j).Message().Interface()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Unmarshal decodes b into m with the generated code, then CheckKnownFields.
// Invalid UTF-8 in a string field is refused by proto.Unmarshal itself.
func Unmarshal(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	return CheckKnownFields(m)
}

// UnixNano is how a time travels on the wire: Unix nanoseconds, the zero
// time as 0 (which proto3 leaves out).
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNano reads a time written by UnixNano: 0 (or less) is the zero
// time.
func FromUnixNano(n int64) time.Time {
	if n <= 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
