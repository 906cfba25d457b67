package pbwire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// EachField walks the fields of one protobuf message. Varint fields give v,
// length-delimited ones raw; fixed-width fields give neither, but f still
// sees them so that CheckWireType can refuse a known field sent with a fixed
// wire type. Groups are refused.
func EachField(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			// ConsumeTag takes numbers up to 2^31-1; protobuf refuses
			// those over 2^29-1, and so does every decoder here.
			return fmt.Errorf("field number %d is over %d", num, protowire.MaxValidNumber)
		}
		b = b[n:]
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		case protowire.Fixed32Type:
			_, n = protowire.ConsumeFixed32(b)
		case protowire.Fixed64Type:
			_, n = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("field %d: unsupported wire type %d", num, typ)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, raw); err != nil {
			return err
		}
	}
	return nil
}

// CheckWireType refuses a known field (1..max) whose wire type is not the
// one the schema gives it (varint, or length-delimited for bytesFields);
// unknown fields pass, for forward compatibility.
func CheckWireType(num protowire.Number, typ protowire.Type, max protowire.Number, bytesFields ...protowire.Number) error {
	if num < 1 || num > max {
		return nil
	}
	want := protowire.VarintType
	for _, f := range bytesFields {
		if f == num {
			want = protowire.BytesType
		}
	}
	if typ != want {
		return fmt.Errorf("field %d: wire type %d, want %d", num, typ, want)
	}
	return nil
}

// AppendVarint appends field num as a varint, or nothing when v is 0 (the
// proto3 default, which a reader takes for absent).
func AppendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendBool appends field num as 1, or nothing when v is false.
func AppendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return AppendVarint(b, num, 1)
}

// AppendBytes appends field num as length-delimited bytes, or nothing when
// v is empty.
func AppendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// AppendString appends field num as a length-delimited string, or nothing
// when v is empty.
func AppendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}
