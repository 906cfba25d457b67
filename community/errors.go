package community

import "errors"

var (
	// ErrConfig is returned by New and ParseBootstrapPeers for a
	// configuration or an address they cannot use.
	ErrConfig = errors.New("community: invalid configuration")
	// ErrNoBootstrap is returned for what needs a bootstrap when the node
	// has none.
	ErrNoBootstrap = errors.New("community: no bootstrap configured")
	// ErrNotSignedIn is returned for what needs the node signed in at its
	// first bootstrap (a private broadcast, mutuals, saved groups) when it
	// is not.
	ErrNotSignedIn = errors.New("community: this node is not signed in at its bootstrap (sign in on the directory page)")
	// ErrUnknownAccount is returned by ResolveAudience for an account or
	// group the bootstrap does not know.
	ErrUnknownAccount = errors.New("community: unknown account")
	// ErrBadLink is what an error from Node.Join is (errors.Is) when the
	// link it was given is not one: the page is answered 400, not 502.
	ErrBadLink = errors.New("community: not a broadcast link")
)

// BadLink marks err, the reason a link does not parse, as ErrBadLink,
// keeping its message: what Node.Join returns for such a link.
func BadLink(err error) error { return badLink{err} }

type badLink struct{ error }

func (e badLink) Unwrap() error      { return e.error }
func (badLink) Is(target error) bool { return target == ErrBadLink }
