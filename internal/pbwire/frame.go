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

// ReadFrame reads one frame of at most max bytes. Any other error is the
// stream's own (io.EOF before a frame, io.ErrUnexpectedEOF inside one).
func ReadFrame(r *bufio.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
