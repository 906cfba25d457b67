package node

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors, wrapped with their detail, for errors.Is. Those of the parts
// come as they are: a publisher refused (a wrong stream key, one already
// live, a broadcast that has ended) gets publish.ErrStreamKey, ErrBusy or
// ErrEnded; a replay that is over, replay.ErrExpired; a bad link,
// link.ErrMalformed.
var (
	// ErrConfig is returned by New, GoLive and Watch for a configuration
	// that cannot work.
	ErrConfig = errors.New("node: invalid configuration")
	// ErrDataDirInUse is returned by New when another node (in this
	// process or another) runs from Config.DataDir: found at once, not
	// after waiting on the stores inside it.
	ErrDataDirInUse = errors.New("node: another node runs from this data directory")
	// ErrAddrInUse is returned by New, in a *ListenError, when another
	// program listens on Config.HTTP or Config.HTTPS.
	ErrAddrInUse = errors.New("node: address in use")
	// ErrClosed is returned by calls on a closed Node or Broadcast.
	ErrClosed = errors.New("node: closed")
	// ErrJoined is returned by Watch for a broadcast this node already
	// takes part in.
	ErrJoined = errors.New("node: already in this broadcast")
	// ErrUnreachable is returned by Watch when no peer of the link answered
	// with the broadcast's announcement.
	ErrUnreachable = errors.New("node: no peer of the link answered")
	// ErrNoChat is returned for what needs a broadcast's chat room when it
	// has none (its room failed to join).
	ErrNoChat = errors.New("node: no chat room for this broadcast")
	// ErrTooMany is returned by Watch when the node already watches
	// Config.MaxWatching broadcasts.
	ErrTooMany = errors.New("node: watching as many broadcasts as it may")
	// ErrNotMember is returned by Watch for a private broadcast this node
	// is not a member of: it holds no membership token for it.
	ErrNotMember = errors.New("node: a private broadcast, and this node is not in its audience")
	// ErrRefused is returned by Watch when the peer it joins through
	// refused its membership token, with the reason it gave (a removed
	// member, an expired token).
	ErrRefused = errors.New("node: refused at attach")
	// ErrNoMailbox is returned by GoLive and Watch for a private broadcast
	// when Config.Private has no mailbox (or, to watch, no device key).
	ErrNoMailbox = errors.New("node: a private broadcast needs a bootstrap (or Config.Private's mailbox) and a device key")
	// ErrNotSignedIn is returned by GoLive for a private broadcast whose
	// keys go through the bootstrap when the node is not signed in there,
	// and by ResolveAudience for mutuals and groups.
	ErrNotSignedIn = errors.New("node: not signed in at the bootstrap, which a private broadcast needs (sign in on the directory page)")
	// ErrUnknownAccount is returned by ResolveAudience for an account or a
	// group the bootstrap does not know.
	ErrUnknownAccount = errors.New("node: unknown account")
)

// ListenError is New's error when a web server cannot listen: which one
// ("HTTP" or "HTTPS"), at what address, and why. It is ErrAddrInUse when
// another program holds the address, ErrConfig otherwise (an address that
// cannot be listened on).
type ListenError struct {
	Server string
	Addr   string
	Err    error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("node: %s on %s: %v", e.Server, e.Addr, e.Err)
}
func (e *ListenError) Unwrap() []error {
	if errors.Is(e.Err, syscall.EADDRINUSE) {
		return []error{ErrAddrInUse, e.Err}
	}
	return []error{ErrConfig, e.Err}
}
