package rtmp

import "errors"

// Errors, each wrapped with the detail, for errors.Is.
var (
	// ErrUnauthorized: the stream key was refused by Config.Authorize, or
	// the URL carried none.
	ErrUnauthorized = errors.New("rtmp: stream key refused")
	// ErrBusy: another publisher is live on the same key.
	ErrBusy = errors.New("rtmp: stream key already publishing")
	// ErrNotPublisher: the client asked to play; this server only ingests.
	ErrNotPublisher = errors.New("rtmp: client asked to play, not publish")
	// ErrTimeout: the client said nothing for Config.ReadTimeout (or did not
	// finish the handshake within Config.HandshakeTimeout).
	ErrTimeout = errors.New("rtmp: client went silent")
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("rtmp: server closed")
	// ErrConfig is returned by New for a configuration that cannot work.
	ErrConfig = errors.New("rtmp: invalid configuration")
)
