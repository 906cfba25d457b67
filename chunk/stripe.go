package chunk

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/peerscope/peerscope/internal/erasure"
)

// A striped chunk is carried by N+P trees, one fragment each (ARCHITECTURE.md,
// "Stripes"). The broadcaster cuts the payload into N fragments of
// ⌈len/N⌉ bytes (the last padded with zeros), computes P parity fragments
// (package erasure), and signs once, under
//
//	"peerscope/chunk/v3\0" ‖ u32be len(broadcast) ‖ broadcast ‖ u64be seq ‖
//	u64be wallclock ‖ u64be duration ‖ u32be flags ‖ u32be epoch ‖
//	u32be N ‖ u32be P ‖ u32be len(payload) ‖ sha256(fragment 0) ‖ … ‖ sha256(fragment N+P−1)
//
// Each fragment travels as a chunk of its own: the same header and signature,
// its index, the payload's length and the N+P hashes, so a relay verifies it
// as it verifies a chunk (its hash among the signed ones, then the
// signature) and a forged fragment is caught at the first hop. Any N
// fragments give the chunk back (Assemble), whose signature a holder checks
// by cutting and hashing again, so replays keep whole chunks.

const hashLen = sha256.Size

// FragmentLen returns the length of each fragment of a payload of size
// bytes cut into n.
func FragmentLen(size, n int) int {
	if n <= 0 {
		return 0
	}
	return (size + n - 1) / n
}

var codes sync.Map // [2]uint32{N, P} → *erasure.Code

func codeFor(n, p uint32) (*erasure.Code, error) {
	k := [2]uint32{n, p}
	if c, ok := codes.Load(k); ok {
		return c.(*erasure.Code), nil
	}
	c, err := erasure.New(int(n), int(p))
	if err != nil {
		return nil, err
	}
	codes.Store(k, c)
	return c, nil
}

// checkStripe checks the striping fields and, on a fragment, that its bytes
// are the ones whose hash was signed.
func (c *Chunk) checkStripe() error {
	if err := c.checkStripeForm(); err != nil {
		return err
	}
	if c.Stripe == 0 {
		return nil
	}
	sum := sha256.Sum256(c.Payload)
	k := int(c.Stripe-1) * hashLen
	if !bytes.Equal(sum[:], c.Hashes[k:k+hashLen]) {
		return fmt.Errorf("%w: seq %d fragment %d is not the one signed", ErrBadSignature, c.Seq, c.Stripe-1)
	}
	return nil
}

// shards cuts a whole striped chunk's payload into its N+P fragments.
func (c *Chunk) shards() ([][]byte, error) {
	code, err := codeFor(c.Data, c.Parity)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	n, p := int(c.Data), int(c.Parity)
	l := FragmentLen(len(c.Payload), n)
	out := make([][]byte, n+p)
	for i := range n {
		lo, hi := min(i*l, len(c.Payload)), min((i+1)*l, len(c.Payload))
		if hi-lo == l {
			out[i] = c.Payload[lo:hi:hi]
		} else {
			out[i] = make([]byte, l)
			copy(out[i], c.Payload[lo:hi])
		}
	}
	for j := range p {
		out[n+j] = make([]byte, l)
	}
	if err := code.Encode(out[:n], out[n:]); err != nil {
		return nil, err
	}
	return out, nil
}

// cutting is a whole striped chunk's fragments and their hashes.
type cutting struct {
	shards [][]byte
	hashes []byte
}

// cutting returns the chunk's fragments: those Sign cut, or cut now.
func (c *Chunk) cutting() (*cutting, error) {
	if c.cut != nil {
		return c.cut, nil
	}
	sh, err := c.shards()
	if err != nil {
		return nil, err
	}
	return &cutting{shards: sh, hashes: hashAll(sh)}, nil
}

func hashAll(shards [][]byte) []byte {
	h := make([]byte, 0, len(shards)*hashLen)
	for _, s := range shards {
		sum := sha256.Sum256(s)
		h = append(h, sum[:]...)
	}
	return h
}

// stripedSigningBytes is SigningBytes under v3: a fragment's from the hashes
// it carries, a whole chunk's from its payload cut again. Nil when the
// striping fields are malformed.
func (c *Chunk) stripedSigningBytes() []byte {
	if c.checkStripeForm() != nil {
		return nil
	}
	hashes, size := c.Hashes, c.Length
	if c.Stripe == 0 {
		cut, err := c.cutting()
		if err != nil {
			return nil
		}
		hashes, size = cut.hashes, uint32(len(c.Payload))
	}
	b := c.appendSignedHeader(make([]byte, 0, len(signingDomainV3)+len(c.Broadcast)+8*3+4*6+len(hashes)), signingDomainV3)
	b = binary.BigEndian.AppendUint32(b, c.Epoch)
	b = binary.BigEndian.AppendUint32(b, c.Data)
	b = binary.BigEndian.AppendUint32(b, c.Parity)
	b = binary.BigEndian.AppendUint32(b, size)
	return append(b, hashes...)
}

// checkStripeForm checks the striping fields' form, all SigningBytes needs
// to be well defined, and a fragment's length, without hashing it.
func (c *Chunk) checkStripeForm() error {
	n, p := c.Data, c.Parity
	switch {
	case n == 0 || p > MaxFragments || n+p > MaxFragments:
		return fmt.Errorf("%w: %d data and %d parity fragments", ErrMalformed, n, p)
	case c.Stripe == 0:
		if c.Length != 0 || len(c.Hashes) != 0 || len(c.Payload) > MaxPayloadSize {
			return fmt.Errorf("%w: a whole striped chunk with a fragment's size or hashes", ErrMalformed)
		}
	case c.Stripe > n+p:
		return fmt.Errorf("%w: fragment %d of %d", ErrMalformed, c.Stripe, n+p)
	case len(c.Hashes) != int(n+p)*hashLen:
		return fmt.Errorf("%w: %d bytes of hashes for %d fragments", ErrMalformed, len(c.Hashes), n+p)
	case c.Length > MaxPayloadSize || len(c.Payload) != FragmentLen(int(c.Length), int(n)):
		return fmt.Errorf("%w: a fragment of %d bytes of a %d-byte payload cut in %d", ErrMalformed, len(c.Payload), c.Length, n)
	}
	return nil
}

// IsFragment reports whether the chunk is one fragment of a striped chunk.
func (c *Chunk) IsFragment() bool { return c.Stripe != 0 }

// Fragments returns the N+P fragments of a whole striped chunk, signed
// already (Sign with Data set), each encoded once: fragment k is carried by
// the broadcast's tree k.
func (c *Chunk) Fragments() ([]*Chunk, error) {
	if c.Data == 0 || c.Stripe != 0 {
		return nil, fmt.Errorf("%w: not a whole striped chunk", ErrMalformed)
	}
	if err := c.checkStripeForm(); err != nil {
		return nil, err
	}
	cut, err := c.cutting()
	if err != nil {
		return nil, err
	}
	hashes := cut.hashes
	out := make([]*Chunk, len(cut.shards))
	for k, s := range cut.shards {
		f := &Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Duration: c.Duration,
			Flags: c.Flags, Epoch: c.Epoch, Data: c.Data, Parity: c.Parity, Stripe: uint32(k + 1),
			Length: uint32(len(c.Payload)), Hashes: hashes, Payload: s, Signature: c.Signature}
		f.Bytes()
		out[k] = f
	}
	return out, nil
}

// Assemble rebuilds a whole chunk from fragments of it, each verified
// already: any N of them with distinct indices (more are ignored). They must
// agree on everything signed; the chunk returned has the signature they
// carry, which Verify checks again by cutting its payload.
func Assemble(frags []*Chunk) (*Chunk, error) {
	if len(frags) == 0 {
		return nil, fmt.Errorf("%w: no fragments", ErrMalformed)
	}
	f0 := frags[0]
	if f0.Stripe == 0 {
		return nil, fmt.Errorf("%w: not a fragment", ErrMalformed)
	}
	if err := f0.checkStripeForm(); err != nil {
		return nil, err
	}
	code, err := codeFor(f0.Data, f0.Parity)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	shards := make([][]byte, f0.Data+f0.Parity)
	have := 0
	for _, f := range frags {
		if f.Stripe == 0 || f.Broadcast != f0.Broadcast || f.Seq != f0.Seq || f.Wallclock != f0.Wallclock ||
			f.Duration != f0.Duration || f.Flags != f0.Flags || f.Epoch != f0.Epoch || f.Data != f0.Data ||
			f.Parity != f0.Parity || f.Length != f0.Length || !bytes.Equal(f.Hashes, f0.Hashes) ||
			!bytes.Equal(f.Signature, f0.Signature) || f.checkStripeForm() != nil {
			return nil, fmt.Errorf("%w: fragments of different chunks (seq %d)", ErrMalformed, f0.Seq)
		}
		if k := f.Stripe - 1; shards[k] == nil && have < int(f0.Data) {
			shards[k] = f.Payload
			have++
		}
	}
	if have < int(f0.Data) {
		return nil, fmt.Errorf("%w: %d of %d fragments of seq %d", ErrMalformed, have, f0.Data, f0.Seq)
	}
	if err := code.Reconstruct(shards); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	size := int(f0.Length)
	p := make([]byte, 0, size)
	for _, s := range shards[:f0.Data] {
		p = append(p, s...)
	}
	c := &Chunk{Broadcast: f0.Broadcast, Seq: f0.Seq, Wallclock: f0.Wallclock, Duration: f0.Duration,
		Flags: f0.Flags, Epoch: f0.Epoch, Data: f0.Data, Parity: f0.Parity, Payload: p[:size:size],
		Signature: f0.Signature}
	return c, nil
}

// Verifier checks chunks against one broadcaster's key, as Verify does,
// and remembers the signatures it has found good, so the N+P fragments of a
// striped chunk, which share one signature over one message, cost one
// ed25519 verification and N+P hashes, not N+P verifications. It keeps the
// last verifierMemory signatures. Safe for concurrent use.
type Verifier struct {
	broadcast string
	key       ed25519.PublicKey

	mu   sync.Mutex
	good map[[sha256.Size]byte]struct{}
	ring [verifierMemory][sha256.Size]byte
	next int
}

const verifierMemory = 256

// NewVerifier returns a verifier for a broadcast and its broadcaster's key.
func NewVerifier(broadcast string, key ed25519.PublicKey) *Verifier {
	return &Verifier{broadcast: broadcast, key: key, good: make(map[[sha256.Size]byte]struct{}, verifierMemory)}
}

// Verify is c.Verify(broadcast, key), a fragment's signature checked once
// for all the fragments of its chunk.
func (v *Verifier) Verify(c *Chunk) error { return c.verify(v.broadcast, v.key, v) }

func digest(m, sig []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(m)
	h.Write(sig)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// knows reports whether this signature over m was found good.
func (v *Verifier) knows(m, sig []byte) bool {
	d := digest(m, sig)
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.good[d]
	return ok
}

// keep remembers a good signature over m, forgetting the oldest.
func (v *Verifier) keep(m, sig []byte) {
	d := digest(m, sig)
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.good[d]; !ok {
		delete(v.good, v.ring[v.next])
		v.ring[v.next] = d
		v.next = (v.next + 1) % verifierMemory
		v.good[d] = struct{}{}
	}
}
