package testutil

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
)

// Feed plays the first d of the sample clip into sink, unpaced.
func Feed(t testing.TB, sink media.Sink, d time.Duration) {
	t.Helper()
	src, err := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), ingest.WithPacing(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var first time.Duration = -1
	err = src.Run(ctx, sampleFilter{sink, func(s media.Sample) bool {
		if first < 0 {
			first = s.DTS
		}
		if s.DTS-first > d {
			cancel()
			return false
		}
		return true
	}})
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
}

// sampleFilter passes on the samples keep keeps.
type sampleFilter struct {
	media.Sink
	keep func(media.Sample) bool
}

func (s sampleFilter) Sample(smp media.Sample) error {
	if !s.keep(smp) {
		return nil
	}
	return s.Sink.Sample(smp)
}
