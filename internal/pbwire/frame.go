package pbwire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WriteFrame writes b as one frame: its length as an unsigned varint, then
// the bytes (the libp2p convention for messages on a stream).
func WriteFrame(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// ErrFrameTooLarge is wrapped by ReadFrame's refusal of a frame over its
// limit.
var ErrFrameTooLarge = errors.New("pbwire: frame too large")

// EagerFrame is the size up to which a frame's buffer is allocated whole
// from its length prefix; past it, the buffer starts at growFrom and grows
// as the bytes arrive.
const EagerFrame = 64 << 10

// growFrom is where a larger frame's buffer starts: a frame that claims
// megabytes and then hangs (a flood keeps many) costs this much.
const growFrom = 16 << 10

// ReadFrame reads one frame of at most max bytes. Any other error is the
// stream's own (io.EOF before a frame, io.ErrUnexpectedEOF inside one).
//
// A length prefix costs its sender three bytes: the buffer is allocated
// whole only up to EagerFrame, and past that grows (doubling, from 16 KiB)
// as the bytes really arrive, so a peer that claims 64 MiB and sends ten
// bytes costs 16 KiB, not 64 MiB.
func ReadFrame(r *bufio.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, max)
	}
	return ReadN(r, n)
}

// ReadN reads exactly n bytes, allocating as ReadFrame does: whole up to
// EagerFrame, else from 16 KiB, growing as they arrive. A stream that ends first gives
// io.ErrUnexpectedEOF.
func ReadN(r io.Reader, n uint64) ([]byte, error) {
	size := n
	if n > EagerFrame {
		size = growFrom
	}
	b := make([]byte, size)
	for {
		if _, err := io.ReadFull(r, b[len(b)-int(size):]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if uint64(len(b)) == n {
			return b, nil
		}
		// Double, never past n.
		size = min(uint64(len(b)), n-uint64(len(b)))
		grown := make([]byte, len(b)+int(size))
		copy(grown, b)
		b = grown
	}
}
