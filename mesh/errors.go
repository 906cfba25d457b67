package mesh

import "errors"

var (
	// ErrFrameTooLarge is returned when a frame exceeds MaxFrameSize.
	ErrFrameTooLarge = errors.New("mesh: frame too large")
	// ErrMalformed is returned for bytes that are not a valid message.
	ErrMalformed = errors.New("mesh: malformed message")
	// ErrNotBroadcaster is returned by Publish on a node that is not the root.
	ErrNotBroadcaster = errors.New("mesh: only the broadcaster publishes")
	// ErrInvalidConfig is returned by New for a configuration it cannot run.
	ErrInvalidConfig = errors.New("mesh: invalid config")
	// ErrUnknownCounter is returned by Count and SetGauge for a name that is
	// not a counter of that kind in Config.Counters.
	ErrUnknownCounter = errors.New("mesh: unknown counter")
	// ErrBanned is returned by Step for a message from a peer this node has banned.
	ErrBanned = errors.New("mesh: peer is banned")
)
