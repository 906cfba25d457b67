package media

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peerscope/peerscope/chunk"
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

// Opener opens the sealed chunks of a private broadcast (chunk.Chunk's
// Epoch is not 0) for the servers that play them to a player. A server
// given one keeps a sealed part as it came from the tree and opens it only
// when a player takes it, into memory it reuses: a member that plays
// nothing decrypts nothing, and no plaintext is kept for the playlist's
// window.
type Opener interface {
	// Open appends the plaintext of c's payload to dst and returns it; an
	// error says the payload does not open (no keys for its epoch, or not
	// what was sealed).
	Open(dst []byte, c *chunk.Chunk) ([]byte, error)
	// PlainLen is the length of c's plaintext once opened.
	PlainLen(c *chunk.Chunk) int
}

// Unseal prepares a chunk for a server given o (which may be nil): a chunk
// that is not sealed comes back as it is; a sealed part with media comes
// back as it is with sealed set, for the server to open when a player asks
// for it; a sealed init segment or empty part (the end) comes back opened,
// as a copy, since the server reads those itself. A sealed chunk without an
// Opener, or one that does not open, is an error.
func Unseal(o Opener, c *chunk.Chunk) (_ *chunk.Chunk, sealed bool, err error) {
	if c.Epoch == 0 {
		return c, false, nil
	}
	if o == nil {
		return nil, false, fmt.Errorf("%w: chunk %d is sealed (epoch %d) and there is no key to open it", ErrSealed, c.Seq, c.Epoch)
	}
	if !c.IsInit() && o.PlainLen(c) > 0 {
		return c, true, nil
	}
	plain, err := o.Open(nil, c)
	if err != nil {
		return nil, false, fmt.Errorf("%w: chunk %d: %w", ErrSealed, c.Seq, err)
	}
	return &chunk.Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Duration: c.Duration,
		Flags: c.Flags, Payload: plain}, false, nil
}

// ErrSealed wraps every failure to open a sealed chunk.
var ErrSealed = errors.New("media: a sealed chunk")
