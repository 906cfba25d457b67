package replay

import "errors"

// Errors. Each is wrapped with context; test with errors.Is.
var (
	// ErrConfig: a Config field is invalid.
	ErrConfig = errors.New("replay: invalid config")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("replay: store closed")
	// ErrMalformed: a block or manifest could not be decoded.
	ErrMalformed = errors.New("replay: malformed")
	// ErrBadSignature: a chunk or manifest is not signed by its broadcaster.
	ErrBadSignature = errors.New("replay: bad signature")
	// ErrExpired: the chunk's 24 hours are over; it is not kept or served.
	ErrExpired = errors.New("replay: expired")
	// ErrQuota: keeping the chunk would exceed the node's storage quota,
	// even after dropping every older replay.
	ErrQuota = errors.New("replay: over quota")
	// ErrDisabled: this node keeps no replays (Config.Disabled).
	ErrDisabled = errors.New("replay: replays disabled on this node")
	// ErrCorrupt: a block on disk does not hash to its CID (it was
	// truncated or damaged); it is dropped and not served.
	ErrCorrupt = errors.New("replay: corrupt block")
	// ErrMismatch: a fetched chunk is not the one the manifest lists.
	ErrMismatch = errors.New("replay: chunk does not match the manifest")
	// ErrNotFound: no such chunk or manifest here.
	ErrNotFound = errors.New("replay: not found")
)
