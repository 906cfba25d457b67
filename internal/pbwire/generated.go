package pbwire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// CheckKnownFields refuses a message decoded by the generated code in which
// a field its schema knows came with another wire type: the generated code
// keeps such a field among the unknown ones and reads it as absent, where a
// hand-written decoder refuses it (CheckWireType). Fields the schema does
// not know pass, for forward compatibility.
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
	return nil
}
