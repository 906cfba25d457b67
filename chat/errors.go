package chat

import (
	"errors"

	"github.com/peerscope/peerscope/identity"
)

// Errors of the wire format and of identities.
var (
	// ErrMalformed is returned for bytes that are not a valid message.
	ErrMalformed = errors.New("chat: malformed message")
	// ErrTooLarge is returned for a message or frame over its size limit.
	ErrTooLarge = errors.New("chat: message too large")
	// ErrBadSignature is returned for a signature that does not verify.
	ErrBadSignature = errors.New("chat: bad signature")
	// ErrUntrusted is returned for an attestation signed by a key that is
	// not among the trusted ones.
	ErrUntrusted = identity.ErrUntrusted
	// ErrExpired is returned for an attestation past its expiry.
	ErrExpired = identity.ErrExpired
	// ErrWrongPeer is returned for an attestation presented by a peer it
	// does not name.
	ErrWrongPeer = identity.ErrWrongPeer
)

// Errors of a Room.
var (
	// ErrInvalidConfig is returned by Join for a configuration it cannot run.
	ErrInvalidConfig = errors.New("chat: invalid config")
	// ErrClosed is returned by calls on a closed Room.
	ErrClosed = errors.New("chat: room closed")
	// ErrNotReady is returned while the room does not yet know the
	// broadcast's moderation state (it learns it within a beat of joining).
	ErrNotReady = errors.New("chat: moderation state not yet known")
	// ErrRateLimited is returned when this peer would exceed the rate that
	// every peer allows a sender.
	ErrRateLimited = errors.New("chat: rate limited")
	// ErrCommentsOff is returned for a comment while comments are off.
	ErrCommentsOff = errors.New("chat: comments are off")
	// ErrFollowersOnly is returned for a comment from someone the
	// broadcaster does not follow while comments are limited to those.
	ErrFollowersOnly = errors.New("chat: comments are limited to people the broadcaster follows")
	// ErrBlocked is returned for anything from a blocked user.
	ErrBlocked = errors.New("chat: blocked")
	// ErrMuted is returned for a comment or report from a muted user.
	ErrMuted = errors.New("chat: muted")
	// ErrDeleted is returned for a comment the broadcaster deleted.
	ErrDeleted = errors.New("chat: comment deleted")
	// ErrNotModerator is returned for a moderation call by someone who is
	// neither the broadcaster nor one of its moderators.
	ErrNotModerator = errors.New("chat: only the broadcaster or a moderator may do this")
	// ErrNotBroadcaster is returned for what only the broadcaster may do.
	ErrNotBroadcaster = errors.New("chat: only the broadcaster may do this")
	// ErrNoCall is returned for a vote on a jury call that is unknown or over.
	ErrNoCall = errors.New("chat: no such open jury call")
	// ErrNotJuror is returned for a vote by someone not on the jury.
	ErrNotJuror = errors.New("chat: not on this jury")
	// ErrDuplicate is returned for a message already seen (a comment ID, a
	// vote, an action no newer than the one in force).
	ErrDuplicate = errors.New("chat: duplicate")
	// ErrStale is returned for a message whose send time is too far from
	// the receiver's clock.
	ErrStale = errors.New("chat: message too old or from the future")
	// ErrForged is returned for a message whose sender may not send it
	// (a beat not from the broadcaster, a moderator request from someone
	// who is not a moderator).
	ErrForged = errors.New("chat: sender may not send this")
	// ErrStateFull is returned when the moderation state is at its size limit.
	ErrStateFull = errors.New("chat: moderation state full")
)
