package cmaf

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/peerscope/peerscope/media"
)

// Defaults for the zero values of Config.
const (
	DefaultPartDuration = 200 * time.Millisecond
	DefaultMaxLag       = time.Second
	DefaultMaxGap       = 5 * time.Second
	DefaultVideoTimeout = 15 * time.Second
	// DefaultMaxPartSize keeps a part, with the chunk header around it,
	// under mesh.MaxPayloadSize (4 MiB).
	DefaultMaxPartSize = 4<<20 - 64<<10
)

// maxPartSamples bounds the samples of one track in one part (mediacommon's
// reader refuses more than 19200 in a trun): a source that sends thousands
// of tiny samples gets more, smaller parts, not a part nobody can read.
const maxPartSamples = 1000

// Config tunes a Packager. The zero value is usable: New fills in defaults.
type Config struct {
	// PartDuration is the target duration of a part; a part is never
	// longer unless a single sample is. Default 200 ms.
	PartDuration time.Duration
	// MaxLag is how far (in media time) one track may run ahead of another
	// before the packager stops waiting for the laggard; it is also how much
	// audio is held while waiting for the first keyframe. It bounds the
	// memory held per track. Default 1 s.
	MaxLag time.Duration
	// MaxGap is the largest forward DTS step that is not a discontinuity.
	// Default 5 s.
	MaxGap time.Duration
	// VideoTimeout is how much media (audio, or video without a keyframe)
	// may arrive before the first video keyframe before Sample fails with
	// ErrNoKeyframe. Default 15 s (x264's default GOP at 25 fps is 10 s).
	VideoTimeout time.Duration
	// MaxPartSize bounds the bytes of a part. Default DefaultMaxPartSize.
	MaxPartSize int
	// StrictTimestamps makes a timestamp discontinuity an error
	// (ErrDiscontinuity) instead of a re-base.
	StrictTimestamps bool
	// Logger receives drops, re-bases and init changes. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration New uses for zero fields.
func DefaultConfig() Config {
	return Config{
		PartDuration: DefaultPartDuration,
		MaxLag:       DefaultMaxLag,
		MaxGap:       DefaultMaxGap,
		VideoTimeout: DefaultVideoTimeout,
		MaxPartSize:  DefaultMaxPartSize,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.PartDuration == 0 {
		c.PartDuration = d.PartDuration
	}
	if c.MaxLag == 0 {
		c.MaxLag = d.MaxLag
	}
	if c.MaxGap == 0 {
		c.MaxGap = d.MaxGap
	}
	if c.VideoTimeout == 0 {
		c.VideoTimeout = d.VideoTimeout
	}
	if c.MaxPartSize == 0 {
		c.MaxPartSize = d.MaxPartSize
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	var errs []error
	if c.PartDuration < 10*time.Millisecond || c.PartDuration > 10*time.Second {
		errs = append(errs, fmt.Errorf("PartDuration %v not within [10ms, 10s]", c.PartDuration))
	}
	if c.MaxLag < 0 || c.MaxGap < 0 || c.VideoTimeout < 0 {
		errs = append(errs, errors.New("MaxLag, MaxGap and VideoTimeout must not be negative"))
	}
	if c.MaxGap > time.Hour {
		// Composition offsets up to MaxGap must fit a trun's int32 ticks.
		errs = append(errs, fmt.Errorf("MaxGap %v over an hour", c.MaxGap))
	}
	if c.MaxPartSize < 64<<10 {
		errs = append(errs, fmt.Errorf("MaxPartSize %d below 64 KiB", c.MaxPartSize))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c, nil
}

// Errors. Those about the input also wrap media.ErrBadInput.
var (
	// ErrConfig is returned by New for an invalid Config.
	ErrConfig = errors.New("cmaf: invalid config")
	// ErrNoTracks: Sample before Tracks, or Tracks with no usable track.
	ErrNoTracks = errors.New("cmaf: no tracks")
	// ErrNoKeyframe: Config.VideoTimeout of media went by without a video
	// keyframe (with SPS and PPS) to start on.
	ErrNoKeyframe = errors.New("cmaf: no video keyframe")
	// ErrDiscontinuity: a timestamp went backwards or jumped, and
	// Config.StrictTimestamps is set.
	ErrDiscontinuity = errors.New("cmaf: timestamp discontinuity")
	// ErrTooLarge: one sample is larger than Config.MaxPartSize.
	ErrTooLarge = errors.New("cmaf: sample too large")
)

// badInput wraps err (a cmaf sentinel) in media.ErrBadInput too.
func badInput(err error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", media.ErrBadInput, err, fmt.Sprintf(format, args...))
}
