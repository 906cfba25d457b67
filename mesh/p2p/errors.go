package p2p

import "errors"

var (
	// ErrClosed is returned by calls on a closed Tree.
	ErrClosed = errors.New("p2p: node closed")
	// ErrInvalidOption is returned by New for an option value it cannot use.
	ErrInvalidOption = errors.New("p2p: invalid option")
	// ErrNotEd25519 is returned for a key or peer ID that is not ed25519.
	ErrNotEd25519 = errors.New("p2p: not an ed25519 key")
	// ErrWrongHost is returned by New when cfg.Self is not the host.
	ErrWrongHost = errors.New("p2p: config Self is not this host")
)
