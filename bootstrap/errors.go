package bootstrap

import (
	"errors"
	"fmt"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Errors of the service. The HTTP layer maps them to status codes
// (httpError).
var (
	// ErrConfig is returned by New and Open for a configuration they
	// cannot run.
	ErrConfig = errors.New("bootstrap: invalid config")
	// ErrNotFound is returned for a broadcast, account or attestation
	// that does not exist.
	ErrNotFound = errors.New("bootstrap: not found")
	// ErrStale is returned for an announcement whose version is not newer
	// than the one stored.
	ErrStale = errors.New("bootstrap: announcement not newer than the stored one")
	// ErrBadRequest is returned for a request that is malformed or breaks
	// a limit.
	// It is api.ErrBadRequest: the checks the API package holds refuse
	// with it too.
	ErrBadRequest = api.ErrBadRequest
	// ErrUnauthenticated is returned for a request whose signature, time
	// or nonce does not hold.
	ErrUnauthenticated = errors.New("bootstrap: request not authenticated")
	// errOldSignature is a signed request of version 1, from a node older
	// than this bootstrap: it names no bootstrap.
	errOldSignature = fmt.Errorf("%w: a version-1 signed request, which names no bootstrap: this node is older than the bootstrap (signed requests are version %d now) and must be upgraded",
		ErrUnauthenticated, api.RequestVersion)
	// errWrongBootstrap is a signed request for another bootstrap.
	errWrongBootstrap = fmt.Errorf("%w: the request is for another bootstrap", ErrUnauthenticated)
	// ErrNoSession is returned for a peer that has not signed in.
	ErrNoSession = errors.New("bootstrap: peer not signed in")
	// ErrForbidden is returned for what the peer may not do (announce
	// another's broadcast).
	ErrForbidden = errors.New("bootstrap: forbidden")
	// ErrRateLimited is returned when a client exceeds its rate.
	ErrRateLimited = errors.New("bootstrap: rate limited")
	// ErrStateInvalid is returned for an OAuth state that is unknown,
	// used before or expired.
	ErrStateInvalid = errors.New("bootstrap: unknown, used or expired OAuth state")
	// ErrProvider is returned when the identity provider refuses (a wrong
	// PKCE verifier, a bad code) or cannot be reached.
	ErrProvider = errors.New("bootstrap: identity provider refused")
	// ErrCodeInvalid is returned for a wrong or expired phone code.
	ErrCodeInvalid = errors.New("bootstrap: wrong or expired code")
	// ErrLocked is returned for a phone number locked after too many
	// wrong codes or sends.
	ErrLocked = errors.New("bootstrap: too many attempts; try later")
	// ErrNotPrivate is returned for a roster or bundles of a broadcast
	// listed as public.
	ErrNotPrivate = errors.New("bootstrap: the broadcast is not listed as private")
	// ErrUnavailable is returned for a feature the bootstrap is not
	// configured for (Twitter without a client ID).
	ErrUnavailable = errors.New("bootstrap: not configured")
)
