package audience

import "errors"

// Errors of the audience's objects. Every refusal wraps one of them, so
// callers (the tree's attach check, the chat validator, the bootstrap's
// routes) tell them apart with errors.Is.
var (
	// ErrMalformed is returned for bytes that are not the object asked for,
	// or fields outside their limits (also by the constructors and Sign).
	ErrMalformed = errors.New("audience: malformed")
	// ErrUnsupportedSuite is returned for a device key or bundle whose HPKE
	// suite this version does not implement.
	ErrUnsupportedSuite = errors.New("audience: unsupported HPKE suite")
	// ErrBadKey is returned for a signing key that is not an ed25519 libp2p
	// key.
	ErrBadKey = errors.New("audience: the signing key is not an ed25519 key")
	// ErrNotBroadcaster is returned when an object of a broadcast would be
	// signed by a key that is not its broadcaster's.
	ErrNotBroadcaster = errors.New("audience: the key is not the broadcaster's")
	// ErrBadSignature is returned for a signature that does not verify: a
	// device key not signed by its device's identity key, a bundle, token
	// or roster not signed by the broadcaster.
	ErrBadSignature = errors.New("audience: bad signature")
	// ErrExpired is returned for a device key or token past its expiry.
	ErrExpired = errors.New("audience: expired")
	// ErrWrongBroadcast is returned for an object of another broadcast.
	ErrWrongBroadcast = errors.New("audience: belongs to another broadcast")
	// ErrWrongPeer is returned for a token presented by a peer it does not
	// name.
	ErrWrongPeer = errors.New("audience: names another peer")
	// ErrWrongRecipient is returned for a bundle wrapped for another device
	// key.
	ErrWrongRecipient = errors.New("audience: wrapped for another device key")
	// ErrWrongEpoch is returned for a chunk or message of another epoch than
	// the keys', or of none (a public chunk).
	ErrWrongEpoch = errors.New("audience: another epoch")
	// ErrOpen is returned when authenticated decryption fails: the
	// ciphertext, its additional data (header, sender) or its key is not
	// what was sealed.
	ErrOpen = errors.New("audience: cannot open: not sealed for this key and header")
	// ErrNonceReused is returned by Epoch.SealChunk for a chunk whose nonce
	// this epoch has used (or could have used) already.
	ErrNonceReused = errors.New("audience: the chunk's nonce was used in this epoch")
	// ErrSealed is returned by Epoch.SealChunk for a chunk that is sealed or
	// signed already.
	ErrSealed = errors.New("audience: the chunk is sealed or signed already")
	// ErrRosterRollback is returned for a roster whose version does not grow.
	ErrRosterRollback = errors.New("audience: roster version does not grow")
	// ErrNotMember is returned for a peer the roster does not list.
	ErrNotMember = errors.New("audience: not a member")
)
