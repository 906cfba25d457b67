package whip

import "errors"

// Errors, wrapped with their detail, for errors.Is. They are also the
// reasons Config.Unpublish is given.
var (
	// ErrConfig is returned by New for a configuration that cannot work.
	ErrConfig = errors.New("whip: invalid configuration")
	// ErrConnectionLost: ICE or DTLS failed, or nothing came from the
	// publisher for Config.MediaTimeout (the browser went away without a
	// DELETE).
	ErrConnectionLost = errors.New("whip: connection lost")
	// ErrNoKeyframe: no usable H.264 keyframe came within
	// Config.FirstKeyframeTimeout of the offer.
	ErrNoKeyframe = errors.New("whip: no H.264 keyframe")
	// ErrClosed: the handler was closed (the node is shutting down).
	ErrClosed = errors.New("whip: handler closed")
	// ErrReplaced: a new offer with the same stream key came while this
	// session had not connected yet (the publisher retried, or its page
	// was reloaded before ICE and DTLS were through).
	ErrReplaced = errors.New("whip: replaced by a new offer before it connected")

	// ErrBusy, from Config.Authorize, refuses a key because another
	// publisher is live on its broadcast: 409, saying so (not 401, which
	// would make the publisher doubt its key).
	ErrBusy = errors.New("whip: another publisher is live on this broadcast")
	// ErrEnded, from Config.Authorize, refuses a key whose broadcast has
	// ended: 410, saying so.
	ErrEnded = errors.New("whip: the broadcast has ended")
)
