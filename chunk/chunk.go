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
	// MaxFragments bounds a striped chunk's N+P.
	MaxFragments = 16
	// MaxSize bounds a chunk's whole encoding (a fragment's carries the
	// hashes of all its chunk's fragments).
	MaxSize = MaxPayloadSize + 2048
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

	// Striping (stripe.go). Data is 0 for a chunk that is not striped.
	// Otherwise the payload is cut into Data fragments, Parity more are
	// computed (package erasure), and the signature covers the SHA-256 of
	// every fragment, so each fragment verifies on its own. A fragment has
	// Stripe = its index + 1, its chunk's payload length in Length and the
	// N+P hashes in Hashes; a whole striped chunk (the broadcaster's, or
	// one assembled from fragments) has Stripe 0 and neither.
	Data, Parity uint32
	Stripe       uint32
	Length       uint32
	Hashes       []byte

	enc []byte   // the canonical encoding, made once and then shared
	cut *cutting // a striped chunk's fragments, cut once by Sign (stripe.go)
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
	signingDomainV3 = "peerscope/chunk/v3\x00"
)

// SigningBytes returns what the broadcaster signs: a domain string, the
// header fields and the SHA-256 of the payload. Hashing the payload first
// keeps the signed message small, so verification never copies the payload.
// A private chunk's (Epoch ≠ 0) are under another domain and end with the
// epoch.
//
// A striped chunk's (Data ≠ 0) are under a third domain (stripe.go). Those of
// a malformed striped chunk (hashes of the wrong length, a stripe out of
// range) are nil, which no signature verifies.
func (c *Chunk) SigningBytes() []byte {
	if c.Data != 0 {
		return c.stripedSigningBytes()
	}
	sum := sha256.Sum256(c.Payload)
	domain := signingDomain
	if c.Epoch != 0 {
		domain = signingDomainV2
	}
	b := c.appendSignedHeader(make([]byte, 0, len(domain)+len(c.Broadcast)+8*5+4+len(sum)), domain)
	if c.Epoch != 0 {
		b = binary.BigEndian.AppendUint32(b, c.Epoch)
	}
	b = append(b, sum[:]...)
	return b
}

// appendSignedHeader appends what every domain signs first: the domain,
// the broadcast ID, seq, wallclock, duration and flags.
func (c *Chunk) appendSignedHeader(b []byte, domain string) []byte {
	b = append(b, domain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Broadcast)))
	b = append(b, c.Broadcast...)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Wallclock))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Duration))
	return binary.BigEndian.AppendUint32(b, uint32(c.Flags))
}

// Sign signs the chunk with the broadcaster's key and encodes it once, so
// that the goroutines forwarding and storing it later only read. A chunk
// must not be changed after it is signed (or decoded).
//
// A whole striped chunk is cut into its fragments here, once, for both the
// signature and Fragments.
func (c *Chunk) Sign(key ed25519.PrivateKey) {
	c.cut = nil
	if c.Data != 0 && c.Stripe == 0 {
		c.cut, _ = c.cutting() // on an error SigningBytes is nil, and so is the signature's worth
	}
	c.Signature = ed25519.Sign(key, c.SigningBytes())
	c.enc = nil
	c.Bytes()
}

// Verify checks the chunk against the broadcast and the broadcaster's key.
func (c *Chunk) Verify(broadcast string, key ed25519.PublicKey) error {
	return c.verify(broadcast, key, nil)
}

// verify is Verify, a fragment's signature looked up in (and, once good,
// kept by) mem when it is not nil.
func (c *Chunk) verify(broadcast string, key ed25519.PublicKey, mem *Verifier) error {
	if c.Broadcast != broadcast {
		return fmt.Errorf("%w: %q, want %q", ErrWrongBroadcast, clip(c.Broadcast), clip(broadcast))
	}
	if c.Data != 0 {
		if err := c.checkStripe(); err != nil {
			return err
		}
	}
	m := c.SigningBytes()
	remembered := mem != nil && c.IsFragment()
	if remembered && mem.knows(m, c.Signature) {
		return nil
	}
	if len(c.Signature) != ed25519.SignatureSize || m == nil || !ed25519.Verify(key, m, c.Signature) {
		return fmt.Errorf("%w: seq %d", ErrBadSignature, c.Seq)
	}
	if remembered {
		mem.keep(m, c.Signature)
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
	d.enc, d.cut = nil, nil
	return &d
}
