package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/peerscope/peerscope/media"
)

// Format is a container a File can read.
type Format int

const (
	FormatTS  Format = iota + 1 // MPEG-TS
	FormatMP4                   // progressive MP4 (ISO BMFF with the samples in moov)
)

func (f Format) String() string {
	switch f {
	case FormatTS:
		return "MPEG-TS"
	case FormatMP4:
		return "MP4"
	}
	return "unknown"
}

// File is a media.Source playing a file: MPEG-TS or MP4, paced at real
// time by default (WithPacing(false) reads as fast as the sink takes it),
// once or, WithLoop, forever.
type File struct {
	name   string
	r      io.ReadSeeker
	closer io.Closer
	format Format
	opts   options
}

var _ media.Source = (*File)(nil)

// OpenFile opens the file at path and sniffs its format. Run closes it.
func OpenFile(path string, opts ...Option) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := NewFile(path, f, opts...)
	if err != nil {
		f.Close()
		return nil, err
	}
	src.closer = f
	return src, nil
}

// NewFile plays r (for instance bytes.NewReader(sample.TS())), named name
// in errors and logs. It sniffs the format from the first bytes.
func NewFile(name string, r io.ReadSeeker, opts ...Option) (*File, error) {
	o := newOptions(opts)
	if !o.paceSet {
		o.pace = true
	}
	format, err := sniff(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &File{name: name, r: r, format: format, opts: o}, nil
}

// Format returns the container the file was found to be.
func (f *File) Format() Format { return f.format }

func sniff(r io.ReadSeeker) (Format, error) {
	var head [189]byte
	n, err := io.ReadFull(r, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	b := head[:n]
	switch {
	case n >= 8 && (bytes.Equal(b[4:8], []byte("ftyp")) || bytes.Equal(b[4:8], []byte("moov"))):
		return FormatMP4, nil
	case n > 188 && b[0] == 0x47 && b[188] == 0x47, n > 0 && n <= 188 && b[0] == 0x47:
		return FormatTS, nil
	}
	return 0, fmt.Errorf("%w: neither MPEG-TS nor MP4 (starts % x)", media.ErrBadInput, b[:min(n, 8)])
}

// Run plays the file into sink; it returns nil at the end of the file
// (never, WithLoop, until ctx ends).
func (f *File) Run(ctx context.Context, sink media.Sink) error {
	if f.closer != nil {
		defer f.closer.Close()
	}
	var loops *pacer
	if f.opts.pace || f.opts.loop {
		loops = newPacer(ctx, sink, f.opts.clock, f.opts.pace)
		sink = loops
	}
	for loop := 0; ; loop++ {
		if _, err := f.r.Seek(0, io.SeekStart); err != nil {
			return err
		}
		var n int
		var err error
		switch f.format {
		case FormatTS:
			n, err = demuxTS(ctx, f.r, sink, f.opts)
		case FormatMP4:
			n, err = demuxMP4(ctx, f.r, sink, f.opts)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if !f.opts.loop || n == 0 {
			return nil
		}
		loops.nextLoop()
		f.opts.log.Debug("file loops", "file", f.name, "loop", loop+1)
	}
}
