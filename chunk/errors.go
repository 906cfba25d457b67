package chunk

import "errors"

var (
	// ErrBadSignature is returned for a chunk whose signature does not verify.
	ErrBadSignature = errors.New("chunk: signature does not verify")
	// ErrWrongBroadcast is returned for a chunk of another broadcast.
	ErrWrongBroadcast = errors.New("chunk: belongs to another broadcast")
	// ErrMalformed is returned for bytes that are not a chunk.
	ErrMalformed = errors.New("chunk: malformed")
	// ErrNotEd25519 is returned for a signing key that is not ed25519.
	ErrNotEd25519 = errors.New("chunk: the key is not an ed25519 key")
)
