package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/peerscope/peerscope/internal/clock"
)

// Errors.
var (
	// ErrConfig: a source was given an invalid configuration.
	ErrConfig = errors.New("ingest: invalid config")
	// ErrDemuxerPanic marks a panic inside the third-party demuxer, turned
	// into an error (it also wraps media.ErrBadInput). The fuzz tests fail
	// on it: it is a bug to fix, not an answer.
	ErrDemuxerPanic = errors.New("ingest: demuxer panic")
)

// Clock is the time a source reads: Now stamps samples with their
// wallclock, Sleep paces files. The system clock (internal/clock's System)
// by default; tests pass a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

var _ Clock = clock.System{}

// Limits on what bad input may cost before it is refused.
const (
	defaultMaxProbe   = 4 << 20 // bytes before the program and its tracks are known
	defaultMaxGarbage = 4 << 20 // bytes without an access unit
	maxSampleSize     = 16 << 20
)

// Option configures a source.
type Option func(*options)

type options struct {
	log        *slog.Logger
	clock      Clock
	pace       bool
	paceSet    bool
	loop       bool
	maxProbe   int64
	maxGarbage int64
}

func newOptions(opts []Option) options {
	o := options{
		log:        slog.New(slog.DiscardHandler),
		clock:      clock.System{},
		maxProbe:   defaultMaxProbe,
		maxGarbage: defaultMaxGarbage,
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithClock sets the clock that stamps and paces samples (default: the
// system clock).
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithPacing releases samples at the pace of their DTS, as a live encoder
// would, and stamps each with the time it was due. On by default for
// files, off for streams (which arrive at their own pace).
func WithPacing(on bool) Option {
	return func(o *options) { o.pace, o.paceSet = on, true }
}

// WithLoop plays a file forever, timestamps continuing across loops.
func WithLoop() Option {
	return func(o *options) { o.loop = true }
}
