package chunk

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Flags say what a chunk holds.
type Flags uint32

const (
	// FlagKeyframe marks a chunk that starts with a keyframe: a decoder can
	// begin here.
	FlagKeyframe Flags = 1 << iota
	// FlagInit marks initialization data (the fMP4 init segment) that a
	// player needs before any other chunk. Relays keep the latest one and
	// give it to every new child first.
	FlagInit
	// FlagEnd marks the last chunk of a broadcast.
	FlagEnd
)

// Size limits, enforced by Decode.
const (
	// MaxPayloadSize bounds a chunk's payload.
	MaxPayloadSize = 4 << 20
	// MaxBroadcastLen bounds the broadcast ID a chunk names.
	MaxBroadcastLen = 512
	// MaxSignatureLen bounds the signature field (ed25519's is 64 bytes).
	MaxSignatureLen = 128
	// MaxSize bounds a chunk's whole encoding.
	MaxSize = MaxPayloadSize + 1024
)

// Chunk is the unit a broadcast moves: a piece of the stream (a CMAF part,
// or the init segment), signed by the broadcaster so that every relay, player
// and replay holder can check it on its own.
type Chunk struct {
	Broadcast string // broadcast ID
	Seq       uint64 // sequence number, from 0, without gaps
	Wallclock int64  // capture time, Unix nanoseconds
	Duration  int64  // media time the chunk spans, nanoseconds (0: unknown)
	Flags     Flags  // keyframe, init, end
	// Epoch is 0 for a public chunk. Otherwise the payload is sealed for a
	// private broadcast's audience (package audience) under that epoch's
	// video key, and the signature covers the epoch too (signingDomainV2).
	Epoch     uint32
	Payload   []byte // media (a CMAF fragment) or synthetic bytes; ciphertext when Epoch ≠ 0
	Signature []byte // ed25519 over SigningBytes

	enc []byte // the canonical encoding, made once and then shared
}

// The signing domains. A public chunk (Epoch 0) is signed under v1, as it
// always was; a private one under v2, which adds the epoch. Since the
// domains differ, a relay can neither strip the epoch from a private chunk
// (an old node that drops the field it does not know, or a forger passing
// ciphertext off as a public chunk) nor add one to a public chunk: the
// signature no longer verifies either way.
const (
	signingDomain   = "peerscope/chunk/v1\x00"
	signingDomainV2 = "peerscope/chunk/v2\x00"
)

// SigningBytes returns what the broadcaster signs: a domain string, the
// header fields and the SHA-256 of the payload. Hashing the payload first
// keeps the signed message small, so verification never copies the payload.
// A private chunk's (Epoch ≠ 0) are under another domain and end with the
// epoch.
func (c *Chunk) SigningBytes() []byte {
	sum := sha256.Sum256(c.Payload)
	b := make([]byte, 0, len(signingDomainV2)+len(c.Broadcast)+8*5+4+len(sum))
	if c.Epoch == 0 {
		b = append(b, signingDomain...)
	} else {
		b = append(b, signingDomainV2...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Broadcast)))
	b = append(b, c.Broadcast...)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Wallclock))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Duration))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Flags))
	if c.Epoch != 0 {
		b = binary.BigEndian.AppendUint32(b, c.Epoch)
	}
	b = append(b, sum[:]...)
	return b
}

// Sign signs the chunk with the broadcaster's key and encodes it once, so
// that the goroutines forwarding and storing it later only read. A chunk
// must not be changed after it is signed (or decoded).
func (c *Chunk) Sign(key ed25519.PrivateKey) {
	c.Signature = ed25519.Sign(key, c.SigningBytes())
	c.enc = nil
	c.Bytes()
}

// Verify checks the chunk against the broadcast and the broadcaster's key.
func (c *Chunk) Verify(broadcast string, key ed25519.PublicKey) error {
	if c.Broadcast != broadcast {
		return fmt.Errorf("%w: %q, want %q", ErrWrongBroadcast, clip(c.Broadcast), clip(broadcast))
	}
	if len(c.Signature) != ed25519.SignatureSize || !ed25519.Verify(key, c.SigningBytes(), c.Signature) {
		return fmt.Errorf("%w: seq %d", ErrBadSignature, c.Seq)
	}
	return nil
}

// IsKeyframe reports whether a decoder can start at this chunk.
func (c *Chunk) IsKeyframe() bool { return c.Flags&FlagKeyframe != 0 }

// IsInit reports whether the chunk carries initialization data.
func (c *Chunk) IsInit() bool { return c.Flags&FlagInit != 0 }

// IsEnd reports whether the chunk is the broadcast's last.
func (c *Chunk) IsEnd() bool { return c.Flags&FlagEnd != 0 }

// IsPrivate reports whether the payload is sealed for a private audience.
func (c *Chunk) IsPrivate() bool { return c.Epoch != 0 }

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Clone returns a copy of the chunk to change (a test's forgery, a tamper
// hook): the payload and signature are shared, the cached encoding is not.
func (c *Chunk) Clone() *Chunk {
	d := *c
	d.enc = nil
	return &d
}
