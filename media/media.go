package media

import (
	"context"
	"errors"
	"time"
)

// Codec names a codec that travels through the tree.
type Codec string

const (
	H264 Codec = "h264"
	Opus Codec = "opus"
	AAC  Codec = "aac" // MPEG-4 Audio (AAC-LC), as RTMP and MPEG-TS bring it
)

// Track describes one elementary stream of a broadcast.
type Track struct {
	ID        int   // 1-based, the fMP4 track ID
	Codec     Codec //
	ClockRate int   // timescale: 90000 for video, the sample rate for audio

	// H.264 parameter sets (without start codes). A source may learn them
	// only with the first keyframe; the packager waits for them.
	SPS, PPS []byte

	// Audio.
	ChannelCount int
	// AudioConfig is the AAC AudioSpecificConfig.
	AudioConfig []byte
}

// IsVideo reports whether the track carries pictures.
func (t Track) IsVideo() bool { return t.Codec == H264 }

// Sample is one access unit of one track: what an ingest yields and what
// WHEP packetizes.
type Sample struct {
	Track    int           // Track.ID
	PTS      time.Duration // presentation time since the source's start
	DTS      time.Duration // decode time (equals PTS without B-frames, and for audio)
	Keyframe bool          // an IDR picture (video); always true for audio
	// NALUs of an H.264 access unit, without start codes or length prefixes.
	NALUs [][]byte
	// Data is one audio frame (an Opus packet, a raw AAC access unit).
	Data []byte
	// Wallclock is when the sample was captured (or received by ingest, when
	// the source does not say): the origin of every live-latency figure.
	Wallclock time.Time
}

// Sink receives what a source produces: the tracks once, before any
// sample, then samples in decode order per track. A Sink's methods are
// called from one goroutine.
type Sink interface {
	Tracks(tracks []Track) error
	Sample(s Sample) error
}

// Source produces media until its context ends or the input does.
type Source interface {
	// Run reads the input and feeds sink; it returns nil when the input
	// ended normally and an error wrapping ErrBadInput when it was not
	// media it understands.
	Run(ctx context.Context, sink Sink) error
}

// Part is one CMAF fragment (an fMP4 moof+mdat with every track), the
// payload of one mesh chunk.
type Part struct {
	Payload     []byte
	Duration    time.Duration // media time the part spans
	Independent bool          // starts with a video keyframe: a segment begins here
	Wallclock   time.Time     // capture time of the part's first sample
}

// Errors.
var (
	// ErrBadInput wraps every complaint about input that is not valid media
	// (garbage on a socket, a corrupt file, an unsupported codec).
	ErrBadInput = errors.New("media: bad input")
	// ErrUnsupportedCodec is returned for codecs the tree cannot carry.
	ErrUnsupportedCodec = errors.New("media: unsupported codec")
)
