package chunk

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
)

// A chunk has one encoding, the canonical form of message Chunk in
// proto/chunk.proto: the fields in the order broadcast, seq,
// wallclock, flags, duration, epoch, data, parity, stripe, length, hashes,
// payload, signature; a varint field that is zero and empty hashes left out
// (so a public chunk, epoch 0, not striped, has the bytes it had before the
// epoch existed); broadcast, payload and signature always present. The same
// bytes go on the wire inside a mesh message, into the replay blockstore, and
// into the replay block's CID, so every node that received a chunk holds the
// same bytes for it. The encoding is written by hand (not by the generated
// code) because it is the hot path: made once per chunk, shared by every
// forward, and decoded without copying the payload; TestCodecMatchesProto
// holds it to the .proto.

// Size returns the length of the chunk's encoding.
func (c *Chunk) Size() int {
	if c.enc != nil {
		return len(c.enc)
	}
	return protowire.SizeTag(1) + protowire.SizeBytes(len(c.Broadcast)) +
		varintSize(2, c.Seq) + varintSize(3, uint64(c.Wallclock)) + varintSize(4, uint64(c.Flags)) +
		varintSize(7, uint64(c.Duration)) + varintSize(8, uint64(c.Epoch)) +
		varintSize(9, uint64(c.Data)) + varintSize(10, uint64(c.Parity)) + varintSize(11, uint64(c.Stripe)) +
		varintSize(12, uint64(c.Length)) + bytesSize(13, c.Hashes) +
		protowire.SizeTag(5) + protowire.SizeBytes(len(c.Payload)) +
		protowire.SizeTag(6) + protowire.SizeBytes(len(c.Signature))
}

// Bytes returns the chunk's canonical encoding. It is made once and then
// shared: the caller must not change it, and the chunk must not be changed
// after the first call.
func (c *Chunk) Bytes() []byte {
	if c.enc == nil {
		c.enc = c.appendTo(make([]byte, 0, c.Size()))
	}
	return c.enc
}

func (c *Chunk) appendTo(b []byte) []byte {
	b = c.appendHeader(b)
	b = append(b, c.Payload...)
	return c.appendTail(b)
}

// appendHeader appends the encoding up to the payload's bytes: the header
// fields and the payload's tag and length.
func (c *Chunk) appendHeader(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, c.Broadcast)
	b = pbwire.AppendVarint(b, 2, c.Seq)
	b = pbwire.AppendVarint(b, 3, uint64(c.Wallclock))
	b = pbwire.AppendVarint(b, 4, uint64(c.Flags))
	b = pbwire.AppendVarint(b, 7, uint64(c.Duration))
	b = pbwire.AppendVarint(b, 8, uint64(c.Epoch))
	b = pbwire.AppendVarint(b, 9, uint64(c.Data))
	b = pbwire.AppendVarint(b, 10, uint64(c.Parity))
	b = pbwire.AppendVarint(b, 11, uint64(c.Stripe))
	b = pbwire.AppendVarint(b, 12, uint64(c.Length))
	b = pbwire.AppendBytes(b, 13, c.Hashes)
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(len(c.Payload)))
}

// appendTail appends what follows the payload: the signature field.
func (c *Chunk) appendTail(b []byte) []byte {
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	return protowire.AppendBytes(b, c.Signature)
}

// bytesSize is the size of a bytes field left out when empty.
func bytesSize(num protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(v))
}

func varintSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

// Decode decodes a chunk. It checks the form (sizes, wire types, a field
// given twice), not the signature: call Verify. Unknown fields are skipped.
//
// When b is the canonical encoding, the chunk keeps b as its encoding and
// its payload and signature alias b, so b must not be reused while the chunk
// lives. Otherwise (unknown fields, another order) the chunk is re-encoded
// when sent or stored and its payload is copied, so that extra bytes a relay
// added are neither forwarded nor kept in memory.
func Decode(b []byte) (*Chunk, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	c := &Chunk{}
	var seen uint16
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 13, 1, 5, 6, 13); err != nil {
			return err
		}
		if num >= 1 && num <= 13 {
			if seen&(1<<num) != 0 {
				return fmt.Errorf("field %d given twice", num)
			}
			seen |= 1 << num
		}
		switch num {
		case 1:
			if len(raw) > MaxBroadcastLen || !utf8.Valid(raw) {
				return fmt.Errorf("broadcast ID of %d bytes, or not UTF-8", len(raw))
			}
			c.Broadcast = string(raw)
		case 2:
			c.Seq = v
		case 3:
			c.Wallclock = int64(v)
		case 4:
			if v > 0xffffffff {
				return fmt.Errorf("flags %#x", v)
			}
			c.Flags = Flags(v)
		case 5:
			if len(raw) > MaxPayloadSize {
				return fmt.Errorf("payload of %d bytes", len(raw))
			}
			c.Payload = raw
		case 6:
			if len(raw) > MaxSignatureLen {
				return fmt.Errorf("signature of %d bytes", len(raw))
			}
			c.Signature = raw
		case 7:
			c.Duration = int64(v)
		case 8:
			if v > 0xffffffff {
				return fmt.Errorf("epoch %#x", v)
			}
			c.Epoch = uint32(v)
		case 9, 10, 11:
			if v > MaxFragments {
				return fmt.Errorf("field %d: %d fragments", num, v)
			}
			switch num {
			case 9:
				c.Data = uint32(v)
			case 10:
				c.Parity = uint32(v)
			default:
				c.Stripe = uint32(v)
			}
		case 12:
			if v > MaxPayloadSize {
				return fmt.Errorf("a striped payload of %d bytes", v)
			}
			c.Length = uint32(v)
		case 13:
			if len(raw) > MaxFragments*hashLen {
				return fmt.Errorf("hashes of %d bytes", len(raw))
			}
			c.Hashes = raw
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if c.isEncoding(b) {
		c.enc = b
	} else {
		c.Payload = bytes.Clone(c.Payload)
		c.Signature = bytes.Clone(c.Signature)
		c.Hashes = bytes.Clone(c.Hashes)
	}
	return c, nil
}

// isEncoding reports whether b is the chunk's canonical encoding, without
// looking at the payload's bytes: with the total length, the header (which
// ends with the payload's length) and the tail equal, the bytes between can
// only be the payload, which Decode took from there.
func (c *Chunk) isEncoding(b []byte) bool {
	if c.Size() != len(b) {
		return false
	}
	var buf [2*MaxBroadcastLen + 2*MaxFragments*hashLen]byte
	h := c.appendHeader(buf[:0])
	if !bytes.Equal(h, b[:len(h)]) {
		return false
	}
	t := c.appendTail(buf[:0])
	return bytes.Equal(t, b[len(b)-len(t):])
}
