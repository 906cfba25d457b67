package node

import "errors"

// Errors, wrapped with their detail, for errors.Is.
var (
	// ErrConfig is returned by New, Broadcast and Watch for a configuration
	// that cannot work.
	ErrConfig = errors.New("node: invalid configuration")
	// ErrClosed is returned by calls on a closed Node or Broadcast.
	ErrClosed = errors.New("node: closed")
	// ErrJoined is returned by Broadcast and Watch for a broadcast this node
	// already takes part in.
	ErrJoined = errors.New("node: already in this broadcast")
	// ErrUnreachable is returned by Watch when no peer of the link answered
	// with the broadcast's announcement.
	ErrUnreachable = errors.New("node: no peer of the link answered")
	// ErrStreamKey refuses a publisher whose stream key names no live
	// broadcast of this node.
	ErrStreamKey = errors.New("node: unknown stream key")
	// ErrBusy refuses a second publisher while one is live on a broadcast
	// (over RTMP and WHIP together).
	ErrBusy = errors.New("node: a publisher is already live on this broadcast")
	// ErrEnded refuses a publisher, or media, for a broadcast that has ended.
	ErrEnded = errors.New("node: the broadcast has ended")
)
