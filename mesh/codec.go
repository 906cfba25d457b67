package mesh

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
)

// The wire format is message Message of proto/mesh.proto (the schema, with
// what each field means), written and read here by hand with protowire
// rather than by the generated code (proto/meshpb), because a message
// carries the chunk: a chunk is encoded once and forwarded as those bytes,
// and a received chunk's payload aliases the frame, never copied (the
// generated code would copy and allocate it: docs/BENCHMARKS.md, "Wire
// codec"). TestCodecMatchesProto holds this codec to the schema.
//
// On a stream each message is a frame: its length as an unsigned varint,
// then the bytes (the libp2p convention).

// MaxFrameSize bounds every frame on the wire.
const MaxFrameSize = chunk.MaxPayloadSize + 64<<10

// Limits that keep a decoded control message small.
const (
	maxListLen   = 64  // path entries, candidates, addresses
	maxStringLen = 512 // peer IDs, addresses, broadcast IDs
)

// Marshal appends the encoding of m to b.
func (m *Message) Marshal(b []byte) []byte {
	b = pbwire.AppendVarint(b, 1, uint64(m.Type))
	if m.Chunk != nil {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Chunk.Bytes())
	}
	b = pbwire.AppendVarint(b, 3, m.Seq)
	b = pbwire.AppendVarint(b, 4, uint64(m.Count))
	b = pbwire.AppendVarint(b, 5, uint64(m.Time))
	b = pbwire.AppendVarint(b, 6, uint64(m.Capacity))
	b = pbwire.AppendVarint(b, 7, uint64(m.Free))
	b = pbwire.AppendVarint(b, 8, uint64(m.Subtree))
	b = pbwire.AppendVarint(b, 9, uint64(m.Depth))
	for i := range m.Path {
		b = protowire.AppendTag(b, 10, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(peerInfoSize(&m.Path[i])))
		b = appendPeerInfo(b, &m.Path[i])
	}
	for i := range m.Candidates {
		b = appendCandidate(b, 11, &m.Candidates[i])
	}
	for _, a := range m.Addrs {
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendString(b, a)
	}
	b = pbwire.AppendVarint(b, 13, uint64(m.Reason))
	b = pbwire.AppendVarint(b, 14, uint64(m.Flags))
	if m.Lost != "" {
		b = protowire.AppendTag(b, 15, protowire.BytesType)
		b = protowire.AppendString(b, string(m.Lost))
	}
	for i := range m.Counters {
		c := &m.Counters[i]
		b = protowire.AppendTag(b, 18, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(counterSize(c)))
		b = pbwire.AppendString(b, 1, c.Name)
		b = pbwire.AppendVarint(b, 2, c.Value)
	}
	if m.Parent != "" {
		b = protowire.AppendTag(b, 19, protowire.BytesType)
		b = protowire.AppendString(b, string(m.Parent))
	}
	for i := range m.Vouches {
		b = appendCandidate(b, 20, &m.Vouches[i])
	}
	return b
}

func appendCandidate(b []byte, num protowire.Number, c *Candidate) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(candidateSize(c)))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(peerInfoSize(&c.PeerInfo)))
	b = appendPeerInfo(b, &c.PeerInfo)
	b = pbwire.AppendVarint(b, 2, uint64(c.Depth))
	b = pbwire.AppendVarint(b, 3, uint64(c.Free))
	return pbwire.AppendVarint(b, 4, uint64(c.Proven))
}

// Size returns the length of m's encoding, without encoding it. The
// simulator charges links with it.
func (m *Message) Size() int {
	n := varintSize(1, uint64(m.Type))
	if m.Chunk != nil {
		n += protowire.SizeTag(2) + protowire.SizeBytes(m.Chunk.Size())
	}
	n += varintSize(3, m.Seq) + varintSize(4, uint64(m.Count)) + varintSize(5, uint64(m.Time)) +
		varintSize(6, uint64(m.Capacity)) + varintSize(7, uint64(m.Free)) + varintSize(8, uint64(m.Subtree)) +
		varintSize(9, uint64(m.Depth)) + varintSize(13, uint64(m.Reason)) + varintSize(14, uint64(m.Flags))
	for i := range m.Path {
		n += protowire.SizeTag(10) + protowire.SizeBytes(peerInfoSize(&m.Path[i]))
	}
	for i := range m.Candidates {
		n += protowire.SizeTag(11) + protowire.SizeBytes(candidateSize(&m.Candidates[i]))
	}
	for _, a := range m.Addrs {
		n += protowire.SizeTag(12) + protowire.SizeBytes(len(a))
	}
	if m.Lost != "" {
		n += protowire.SizeTag(15) + protowire.SizeBytes(len(m.Lost))
	}
	for i := range m.Counters {
		n += protowire.SizeTag(18) + protowire.SizeBytes(counterSize(&m.Counters[i]))
	}
	if m.Parent != "" {
		n += protowire.SizeTag(19) + protowire.SizeBytes(len(m.Parent))
	}
	for i := range m.Vouches {
		n += protowire.SizeTag(20) + protowire.SizeBytes(candidateSize(&m.Vouches[i]))
	}
	return n
}

func counterSize(c *CounterValue) int {
	n := varintSize(2, c.Value)
	if c.Name != "" {
		n += protowire.SizeTag(1) + protowire.SizeBytes(len(c.Name))
	}
	return n
}

func varintSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func peerInfoSize(p *PeerInfo) int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(p.ID))
	for _, a := range p.Addrs {
		n += protowire.SizeTag(2) + protowire.SizeBytes(len(a))
	}
	return n
}

func appendPeerInfo(b []byte, p *PeerInfo) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, string(p.ID))
	for _, a := range p.Addrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, a)
	}
	return b
}

func candidateSize(c *Candidate) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(peerInfoSize(&c.PeerInfo)) +
		varintSize(2, uint64(c.Depth)) + varintSize(3, uint64(c.Free)) + varintSize(4, uint64(c.Proven))
}

// Unmarshal decodes a message. The chunk payload and signature alias b, so
// b must not be reused while the message lives.
func (m *Message) Unmarshal(b []byte) error {
	*m = Message{}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		// Fields 16 and 17 (hearts, web) are retired: unknown, skipped.
		if err := pbwire.CheckWireType(num, typ, 20, 2, 10, 11, 12, 15, 18, 19, 20); err != nil && num != 16 && num != 17 {
			return err
		}
		switch num {
		case 1:
			if v == 0 || v >= uint64(maxMsgType) {
				return fmt.Errorf("unknown message type %d", v)
			}
			m.Type = MsgType(v)
		case 2:
			if m.Chunk != nil {
				// Protobuf would merge the two; no sender writes two.
				return fmt.Errorf("field %d given twice", num)
			}
			c, err := chunk.Decode(raw)
			if err != nil {
				return err
			}
			m.Chunk = c
		case 3:
			m.Seq = v
		case 4:
			m.Count = uint32(v)
		case 5:
			m.Time = int64(v)
		case 6:
			m.Capacity = uint32(v)
		case 7:
			m.Free = uint32(v)
		case 8:
			m.Subtree = uint32(v)
		case 9:
			m.Depth = uint32(v)
		case 13:
			m.Reason = Reason(v)
		case 14:
			m.Flags = uint32(v)
		case 10, 11, 12, 15, 18, 19, 20:
			return m.unmarshalBytes(num, raw)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.Type == 0 {
		return fmt.Errorf("%w: no message type", ErrMalformed)
	}
	if m.Type == MsgChunk && m.Chunk == nil {
		return fmt.Errorf("%w: chunk message without a chunk", ErrMalformed)
	}
	if m.Chunk != nil {
		m.Excess = max(len(b)-m.Size(), 0)
	}
	return nil
}

// unmarshalBytes decodes one of the message's length-delimited fields
// other than the chunk: a list entry (path, candidates, addresses,
// counters), each list bounded, or a peer ID (lost, parent).
func (m *Message) unmarshalBytes(num protowire.Number, raw []byte) error {
	full := func(n int, what string) error {
		if n >= maxListLen {
			return fmt.Errorf("more than %d %s", maxListLen, what)
		}
		return nil
	}
	switch num {
	case 10:
		if err := full(len(m.Path), "path entries"); err != nil {
			return err
		}
		var p PeerInfo
		if err := p.unmarshal(raw); err != nil {
			return fmt.Errorf("path: %w", err)
		}
		m.Path = append(m.Path, p)
	case 11, 20:
		list := &m.Candidates
		if num == 20 {
			list = &m.Vouches
		}
		if err := full(len(*list), "candidates"); err != nil {
			return err
		}
		var c Candidate
		if err := c.unmarshal(raw); err != nil {
			return fmt.Errorf("candidate: %w", err)
		}
		*list = append(*list, c)
	case 12:
		a, err := text(num, raw)
		if err != nil {
			return err
		}
		if err := full(len(m.Addrs), "addrs"); err != nil {
			return err
		}
		m.Addrs = append(m.Addrs, a)
	case 18:
		if err := full(len(m.Counters), "counters"); err != nil {
			return err
		}
		var c CounterValue
		if err := c.unmarshal(raw); err != nil {
			return fmt.Errorf("counter: %w", err)
		}
		m.Counters = append(m.Counters, c)
	case 15, 19:
		id, err := text(num, raw)
		if err != nil {
			return err
		}
		if num == 15 {
			m.Lost = PeerID(id)
		} else {
			m.Parent = PeerID(id)
		}
	}
	return nil
}

func (p *PeerInfo) unmarshal(b []byte) error {
	return pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1, 2); err != nil {
			return err
		}
		if len(raw) > maxStringLen {
			return errWireType(num)
		}
		if num != 1 && num != 2 {
			return nil
		}
		s, err := text(num, raw)
		if err != nil {
			return err
		}
		switch num {
		case 1:
			p.ID = PeerID(s)
		case 2:
			if len(p.Addrs) >= maxListLen {
				return fmt.Errorf("more than %d addrs", maxListLen)
			}
			p.Addrs = append(p.Addrs, s)
		}
		return nil
	})
}

func (c *Candidate) unmarshal(b []byte) error {
	return pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 4, 1); err != nil {
			return err
		}
		switch num {
		case 1:
			return c.PeerInfo.unmarshal(raw)
		case 2:
			c.Depth = uint32(v)
		case 3:
			c.Free = uint32(v)
		case 4:
			c.Proven = uint32(v)
		}
		return nil
	})
}

func (c *CounterValue) unmarshal(b []byte) error {
	return pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1); err != nil {
			return err
		}
		switch num {
		case 1:
			name, err := text(num, raw)
			if err != nil {
				return err
			}
			c.Name = name
		case 2:
			c.Value = v
		}
		return nil
	})
}

// text returns a string field's bytes as a string: at most maxStringLen of
// them, and valid UTF-8, as proto3 requires of a string.
func text(num protowire.Number, raw []byte) (string, error) {
	if len(raw) > maxStringLen {
		return "", errWireType(num)
	}
	if !utf8.Valid(raw) {
		return "", fmt.Errorf("field %d: not UTF-8", num)
	}
	return string(raw), nil
}

func errWireType(num protowire.Number) error {
	return fmt.Errorf("field %d: bad wire type or size", num)
}

// AppendFrame appends m as a length-delimited frame.
func AppendFrame(b []byte, m *Message) []byte {
	b = binary.AppendUvarint(b, uint64(m.Size()))
	return m.Marshal(b)
}

// ReadFrame reads one length-delimited frame and decodes it.
func ReadFrame(r *bufio.Reader, m *Message) error {
	n, err := readFrameLen(r)
	if err != nil {
		return err
	}
	// A frame is allocated whole only up to a size that costs little; a
	// larger claimed length grows the buffer as bytes really arrive, so a
	// peer cannot make us allocate megabytes with a three-byte prefix.
	const eager = 256 << 10
	var buf []byte
	if n <= eager {
		buf = make([]byte, n)
		_, err = io.ReadFull(r, buf)
	} else {
		buf, err = io.ReadAll(io.LimitReader(r, int64(n)))
		if err == nil && uint64(len(buf)) < n {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the stream ended after a length prefix
		}
		return err
	}
	return m.Unmarshal(buf)
}

// readFrameLen reads a frame's length, an unsigned varint, refusing it with
// ErrFrameTooLarge as soon as it exceeds MaxFrameSize and with ErrMalformed
// if it overflows (binary.ReadUvarint reports that with an error of its own,
// which a caller could not tell from a failing connection). io.EOF means the
// stream ended cleanly before the frame.
func readFrameLen(r io.ByteReader) (uint64, error) {
	var n uint64
	for i := range binary.MaxVarintLen64 {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		n |= uint64(c&0x7f) << (7 * i)
		if n > MaxFrameSize {
			return 0, fmt.Errorf("%w: over %d bytes", ErrFrameTooLarge, MaxFrameSize)
		}
		if c < 0x80 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: frame length overflows", ErrMalformed)
}
