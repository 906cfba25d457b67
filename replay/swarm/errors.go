package swarm

import "errors"

// Errors, wrapped with their detail, for errors.Is. A replay that is over
// (or that no peer of the link has any more) gives replay.ErrExpired.
var (
	// ErrMalformed wraps a replay request or answer that does not decode.
	ErrMalformed = errors.New("swarm: bad replay message")
	// ErrNoManifest: the peer asked holds no manifest of the replay.
	ErrNoManifest = errors.New("swarm: the peer has no manifest of the replay")
	// ErrClosed is returned by calls on a closed Swarm.
	ErrClosed = errors.New("swarm: closed")
)
