package ingest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/peerscope/peerscope/media"
)

// fuzzInput runs one input through a demuxer and the packager: whatever it
// is, the result is media or an error wrapping media.ErrBadInput, never a
// panic (ErrDemuxerPanic marks one caught in the demuxer) nor a hang.
func fuzzInput(t *testing.T, format Format, b []byte) {
	r, err := runInput(t, inputCase{name: "fuzz", format: format}, b)
	if err != nil && !errors.Is(err, media.ErrBadInput) {
		t.Fatalf("error %v does not wrap media.ErrBadInput", err)
	}
	if errors.Is(err, ErrDemuxerPanic) {
		t.Fatalf("demuxer panic: %v", err)
	}
	_ = r
}

// FuzzTS feeds bytes through the MPEG-TS source into the packager. The
// corpus (testdata/fuzz/FuzzTS) holds the input table's MPEG-TS cases and
// what the fuzzer found.
func FuzzTS(f *testing.F) {
	for _, c := range inputCases {
		if c.format == FormatTS {
			in := c.input(f)
			f.Add(in[:min(len(in), maxSeed)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzInput(t, FormatTS, b) })
}

// FuzzMP4 does the same for MP4 files.
func FuzzMP4(f *testing.F) {
	for _, c := range inputCases {
		if c.format == FormatMP4 {
			in := c.input(f)
			f.Add(in[:min(len(in), maxSeed)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := NewFile("fuzz", bytes.NewReader(b)); err != nil {
			if !errors.Is(err, media.ErrBadInput) {
				t.Fatalf("sniff: %v", err)
			}
			return
		}
		fuzzInput(t, FormatMP4, b)
	})
}

// BenchmarkDemux demuxes and packages each input of the table that is
// media; the sample clip is the reference (10 s, 0.8 MB).
func BenchmarkDemux(b *testing.B) {
	for _, c := range inputCases {
		if c.err != nil {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			in := c.input(b)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			parts := 0
			for b.Loop() {
				r, err := runInput(b, c, in)
				if err != nil {
					b.Fatal(err)
				}
				parts += len(r.parts)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(parts), "ns/part")
		})
	}
}
