package ingest

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/cmaf"
	"github.com/peerscope/peerscope/media/sample"
)

// recorder is the sink of these tests: it keeps what it is given (without
// the payloads) and packages it with cmaf, so every test also checks that
// the output packs into parts that parse.
type recorder struct {
	mu      sync.Mutex
	tracks  [][]media.Track
	samples []media.Sample
	pack    *cmaf.Packager
	inits   int
	parts   []media.Part
	// after is called after each sample, with the count so far.
	after func(n int)
	bench bool // keep nothing, check nothing
}

func newRecorder(tb testing.TB) *recorder {
	r := &recorder{}
	_, bench := tb.(*testing.B)
	p, err := cmaf.New(cmaf.Config{}, func(o cmaf.Output) error {
		if bench { // measure the demuxer and the packager, not the checks
			if o.Init == nil {
				r.parts = append(r.parts, o.Part)
			}
			return nil
		}
		if o.Init != nil {
			r.inits++
			var init fmp4.Init
			if err := init.Unmarshal(strings.NewReader(string(o.Init))); err != nil {
				return fmt.Errorf("init does not parse: %w", err)
			}
			return nil
		}
		var ps fmp4.Parts
		if err := ps.Unmarshal(o.Part.Payload); err != nil {
			return fmt.Errorf("part does not parse: %w", err)
		}
		r.parts = append(r.parts, o.Part)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.pack, r.bench = p, bench
	return r
}

func (r *recorder) Tracks(ts []media.Track) error {
	r.mu.Lock()
	r.tracks = append(r.tracks, ts)
	r.mu.Unlock()
	return r.pack.Tracks(ts)
}

func (r *recorder) Sample(s media.Sample) error {
	if r.bench {
		return r.pack.Sample(s)
	}
	r.mu.Lock()
	meta := s
	meta.NALUs, meta.Data = nil, nil
	r.samples = append(r.samples, meta)
	n := len(r.samples)
	r.mu.Unlock()
	if err := r.pack.Sample(s); err != nil {
		return err
	}
	if r.after != nil {
		r.after(n)
	}
	return nil
}

func (r *recorder) count(track int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.samples {
		if s.Track == track {
			n++
		}
	}
	return n
}

func (r *recorder) codecs() []media.Codec {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tracks) == 0 {
		return nil
	}
	var cs []media.Codec
	for _, t := range r.tracks[0] {
		cs = append(cs, t.Codec)
	}
	return cs
}

// fakeClock is a Clock whose Sleep moves time on at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// randomBytes is deterministic garbage.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// withoutPIDs drops the TS packets of the given PIDs.
func withoutPIDs(ts []byte, pids ...uint16) []byte {
	var out []byte
	for i := 0; i+188 <= len(ts); i += 188 {
		p := ts[i : i+188]
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		drop := false
		for _, d := range pids {
			drop = drop || pid == d
		}
		if !drop {
			out = append(out, p...)
		}
	}
	return out
}

// programOnly keeps the PAT and PMT packets of a TS.
func programOnly(ts []byte) []byte {
	var out []byte
	for i := 0; i+188 <= len(ts) && len(out) < 2*188; i += 188 {
		p := ts[i : i+188]
		if pid := uint16(p[1]&0x1f)<<8 | uint16(p[2]); pid == 0 || pid == 0x1000 {
			out = append(out, p...)
		}
	}
	return out
}

// The table of inputs shared by the unit, fuzz and benchmark tests of the
// demuxers. format says which source reads it.
type inputCase struct {
	name   string
	format Format
	input  func(testing.TB) []byte
	err    error         // nil: the input is media
	codecs []media.Codec // when it is
	video  int           // samples expected; -1: some
	audio  int
}

var inputCases = []inputCase{
	{name: "sample clip", format: FormatTS, input: func(testing.TB) []byte { return sample.TS() },
		codecs: []media.Codec{media.H264, media.Opus}, video: 300, audio: 501},
	{name: "h264 b-frames aac", format: FormatTS, input: func(tb testing.TB) []byte { return testdata(tb, "aac-bframes.ts") },
		codecs: []media.Codec{media.H264, media.AAC}, video: 50, audio: 95},
	{name: "mp4 h264 b-frames aac", format: FormatMP4, input: func(tb testing.TB) []byte { return testdata(tb, "clip.mp4") },
		codecs: []media.Codec{media.H264, media.AAC}, video: 50, audio: 95},
	{name: "mp4 h264 opus", format: FormatMP4, input: func(tb testing.TB) []byte { return testdata(tb, "opus.mp4") },
		codecs: []media.Codec{media.H264, media.Opus}, video: 50, audio: 101},
	{name: "truncated mid-stream", format: FormatTS, input: func(testing.TB) []byte { return sample.TS()[:300000] },
		codecs: []media.Codec{media.H264, media.Opus}, video: -1, audio: -1},
	{name: "truncated before any media", format: FormatTS, input: func(testing.TB) []byte { return sample.TS()[:600] }, err: media.ErrBadInput},
	{name: "empty", format: FormatTS, input: func(testing.TB) []byte { return nil }, err: media.ErrBadInput},
	{name: "random bytes", format: FormatTS, input: func(testing.TB) []byte { return randomBytes(256<<10, 1) }, err: media.ErrBadInput},
	{name: "sync bytes only", format: FormatTS, input: func(testing.TB) []byte {
		b := make([]byte, 188*1000)
		for i := 0; i < len(b); i += 188 {
			b[i] = 0x47
		}
		return b
	}, err: media.ErrBadInput},
	{name: "no PAT or PMT", format: FormatTS, input: func(testing.TB) []byte { return withoutPIDs(sample.TS(), 0, 0x1000) }, err: media.ErrBadInput},
	{name: "program then garbage", format: FormatTS, input: func(testing.TB) []byte {
		return append(programOnly(sample.TS()), randomBytes(64<<10, 2)...)
	}, err: media.ErrBadInput},
	{name: "mpeg-2 video and mp2 audio", format: FormatTS, input: func(tb testing.TB) []byte { return testdata(tb, "mpeg2.ts") }, err: media.ErrUnsupportedCodec},
	{name: "fragmented mp4", format: FormatMP4, input: func(tb testing.TB) []byte { return testdata(tb, "frag.mp4") }, err: media.ErrBadInput},
	{name: "mp4 truncated", format: FormatMP4, input: func(tb testing.TB) []byte { return testdata(tb, "clip.mp4")[:4000] }, err: media.ErrBadInput},
}

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the input table to testdata/fuzz/<FuzzName>/seed-* and exit the test")

// maxSeed keeps seed files small: the fuzzer mutates prefixes well enough.
const maxSeed = 12 << 10

// TestWriteFuzzSeeds writes the table's inputs (their first 12 KiB) as
// seed corpus files when run with -write-fuzz-seeds, leaving existing
// files alone.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/*/seed-*")
	}
	for _, c := range inputCases {
		fuzz := map[Format]string{FormatTS: "FuzzTS", FormatMP4: "FuzzMP4"}[c.format]
		in := c.input(t)
		fuzzseed.Write(t, fuzz, "seed-"+strings.NewReplacer(" ", "-").Replace(c.name), in[:min(len(in), maxSeed)])
	}
}
