package mesh

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// ChunkFlags say what a chunk holds.
type ChunkFlags uint32

const (
	// FlagKeyframe marks a chunk that starts with a keyframe: a decoder can
	// begin here.
	FlagKeyframe ChunkFlags = 1 << iota
	// FlagInit marks initialization data (e.g. the fMP4 init segment) that a
	// player needs before any other chunk. Nodes keep the latest one and give
	// it to every new child first.
	FlagInit
	// FlagEnd marks the last chunk of a broadcast.
	FlagEnd
)

// MaxPayloadSize bounds a chunk's payload; MaxFrameSize leaves room for the
// header around it.
const MaxPayloadSize = 4 << 20

// Chunk is the unit the tree moves: a piece of the stream, signed by the
// broadcaster so that every relay can check it before forwarding.
type Chunk struct {
	Broadcast string     // broadcast ID
	Seq       uint64     // sequence number, from 0, without gaps
	Wallclock int64      // capture time, Unix nanoseconds
	Duration  int64      // media time the chunk spans, nanoseconds (0: unknown)
	Flags     ChunkFlags // keyframe, init, end
	Payload   []byte     // media (a CMAF fragment) or synthetic bytes
	Signature []byte     // ed25519 over SigningBytes

	wire []byte // cached encoding of the chunk, shared by every forward
}

const signingDomain = "peerscope/chunk/v1\x00"

// SigningBytes returns what the broadcaster signs: a domain string, the
// header fields and the SHA-256 of the payload. Hashing the payload first
// keeps the signed message small, so verification never copies the payload.
func (c *Chunk) SigningBytes() []byte {
	sum := sha256.Sum256(c.Payload)
	b := make([]byte, 0, len(signingDomain)+len(c.Broadcast)+8*5+len(sum))
	b = append(b, signingDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Broadcast)))
	b = append(b, c.Broadcast...)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Wallclock))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Duration))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Flags))
	b = append(b, sum[:]...)
	return b
}

// Sign signs the chunk with the broadcaster's key and encodes it once, so
// that goroutines forwarding it later only read. A chunk must not be changed
// after it is signed (or decoded).
func (c *Chunk) Sign(key ed25519.PrivateKey) {
	c.Signature = ed25519.Sign(key, c.SigningBytes())
	c.wire = nil
	c.wireBytes()
}

// Verify checks the chunk against the broadcast and the broadcaster's key.
func (c *Chunk) Verify(broadcast string, key ed25519.PublicKey) error {
	if c.Broadcast != broadcast {
		return fmt.Errorf("%w: %q, want %q", ErrWrongBroadcast, c.Broadcast, broadcast)
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
