package swarm

import "errors"

// Errors, wrapped with their detail, for errors.Is. A replay that is over
// (or that the peers of the link that answered no longer have) gives
// replay.ErrExpired; a link none of whose peers answered, ErrUnreachable.
var (
	// ErrMalformed wraps a replay request or answer that does not decode.
	ErrMalformed = errors.New("swarm: bad replay message")
	// ErrNoManifest: the peer asked holds no manifest of the replay.
	ErrNoManifest = errors.New("swarm: the peer has no manifest of the replay")
	// ErrUnreachable: no peer of the link (nor a holder one named)
	// answered; the replay may well be alive elsewhere.
	ErrUnreachable = errors.New("swarm: no peer of the link could be reached to ask for the replay")
	// ErrClosed is returned by calls on a closed Swarm.
	ErrClosed = errors.New("swarm: closed")
)
