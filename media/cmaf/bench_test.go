package cmaf

import (
	"testing"
	"time"
)

// BenchmarkPackager runs each case of the table that produces parts and
// reports the cost per part. "h264 opus 2.5Mbps" is the reference figure:
// 200 ms parts of 2.5 Mb/s H.264 (30 fps, a keyframe a second) and Opus.
func BenchmarkPackager(b *testing.B) {
	for _, c := range cases {
		if c.want.err != nil || c.want.parts == 0 {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			var bytes int
			for _, o := range c.ops {
				bytes += len(o.sample.Data)
				for _, n := range o.sample.NALUs {
					bytes += len(n)
				}
			}
			b.SetBytes(int64(bytes))
			b.ReportAllocs()
			parts := 0
			for b.Loop() {
				p, _ := New(c.cfg, func(o Output) error {
					if o.Init == nil {
						parts++
					}
					return nil
				})
				for _, o := range c.ops {
					switch o.kind {
					case opTracks:
						_ = p.Tracks(o.tracks)
					case opSample:
						_ = p.Sample(o.sample)
					}
				}
				_ = p.Flush()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(parts), "ns/part")
		})
	}
}

// BenchmarkPart measures one steady-state part (op = one 200 ms part of
// 2.5 Mb/s H.264 at 30 fps and 64 kb/s Opus): the table's "h264 opus
// 2.5Mbps" case, replayed with its timestamps moved on each loop, so
// allocs/op and B/op are per part.
func BenchmarkPart(b *testing.B) {
	var c packCase
	for _, c = range cases {
		if c.name == "h264 opus 2.5Mbps" {
			break
		}
	}
	parts := 0
	p, _ := New(Config{}, func(o Output) error {
		if o.Init == nil {
			parts++
		}
		return nil
	})
	if err := p.Tracks(c.ops[0].tracks); err != nil {
		b.Fatal(err)
	}
	samples := c.ops[1:]
	var bytes int64
	for _, o := range samples {
		bytes += int64(len(o.sample.Data))
		for _, n := range o.sample.NALUs {
			bytes += int64(len(n))
		}
	}
	b.SetBytes(bytes / 50)
	b.ReportAllocs()
	loop := time.Duration(0)
	const span = 10 * time.Second
	for i := 0; ; i++ {
		if i == len(samples) {
			i, loop = 0, loop+span
		}
		s := samples[i].sample
		s.DTS += loop
		s.PTS += loop
		if err := p.Sample(s); err != nil {
			b.Fatal(err)
		}
		if parts == 10 && loop == 0 {
			b.ResetTimer() // arenas grown: steady state from here
		}
		if parts >= b.N+10 {
			break
		}
	}
}
