package pbwire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Unmarshal decodes b into m with the generated code and then refuses what
// the hand-written decoders refused and the generated code lets through: a
// known field sent with another wire type (protobuf-go keeps it among the
// unknown fields), here and in every nested message. Unknown fields of
// numbers the schema does not know pass, for forward compatibility.
// Invalid UTF-8 in a string field is refused by proto.Unmarshal itself.
func Unmarshal(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	return checkKnown(m)
}

func checkKnown(m proto.Message) error {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	unknown := r.GetUnknown()
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeField(unknown)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if fields.ByNumber(num) != nil {
			return fmt.Errorf("field %d: wire type %d is not the schema's", num, typ)
		}
		unknown = unknown[n:]
	}
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Message() == nil {
			continue
		}
		switch {
		case f.IsList():
			list := r.Get(f).List()
			for j := range list.Len() {
				if err := checkKnown(list.Get(j).Message().Interface()); err != nil {
					return err
				}
			}
		case !f.IsMap() && r.Has(f):
			if err := checkKnown(r.Get(f).Message().Interface()); err != nil {
				return err
			}
		}
	}
	return nil
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
