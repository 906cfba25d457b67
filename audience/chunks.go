package audience

import (
	"encoding/binary"
	"fmt"

	"github.com/peerscope/peerscope/chunk"
)

// A chunk's payload is sealed with AES-256-GCM under its epoch's video key.
// The header stays readable and the broadcaster signs header and ciphertext
// (chunk.Chunk.Sign after SealChunk), so relays verify and route without the
// key; members open the payload (OpenChunk) before they play or store the
// plaintext.
//
// The nonce (12 bytes) is derived from the header, never sent:
//
//	u32be epoch ‖ u8 kind ‖ u56be seq
//
// kind is 1 for an init chunk (FlagInit), else 2 for an end chunk
// (FlagEnd), else 0 (a part). The kind is there because a sequence number
// alone does not name a chunk: an init chunk carries the Seq of a part, and
// an empty end chunk the Seq of the last part. A (kind, seq) pair is used
// once per epoch: Epoch.SealChunk refuses a seq that is not above the last
// one it sealed of the same kind (ErrNonceReused). The key itself is new in
// every epoch (a fresh random secret, and the epoch in HKDF's info), and an
// Epoch is the only thing that seals, made only with a fresh secret: so a
// restarted broadcaster, which starts a new Epoch, never repeats a key and
// nonce pair, even if it took an epoch number again.
//
// The additional data binds the ciphertext to its header:
//
//	"peerscope/audience/chunk/1\0" ‖ u32be len(broadcast) ‖ broadcast ‖
//	u32be epoch ‖ u64be seq ‖ u32be flags
//
// (the capture time and duration are not in it: the signature covers them).

const chunkAADDomain = "peerscope/audience/chunk/1\x00"

// Nonce kinds.
const (
	kindPart = iota
	kindInit
	kindEnd
	kinds
)

// maxSealSeq bounds the sequence numbers a nonce holds (56 bits: 11
// billion years of 200 ms parts).
const maxSealSeq = 1<<56 - 1

// Overhead is what sealing adds to a payload: the GCM tag.
const Overhead = 16

func chunkKind(f chunk.Flags) int {
	switch {
	case f&chunk.FlagInit != 0:
		return kindInit
	case f&chunk.FlagEnd != 0:
		return kindEnd
	}
	return kindPart
}

// chunkNonce returns the nonce of a chunk's header.
func chunkNonce(epoch uint32, f chunk.Flags, seq uint64) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint32(n[:4], epoch)
	binary.BigEndian.PutUint64(n[4:], seq)
	n[4] = byte(chunkKind(f)) // over the seq's top byte, which maxSealSeq keeps 0
	return n
}

func chunkAAD(b []byte, c *chunk.Chunk, epoch uint32) []byte {
	b = append(b, chunkAADDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Broadcast)))
	b = append(b, c.Broadcast...)
	b = binary.BigEndian.AppendUint32(b, epoch)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	return binary.BigEndian.AppendUint32(b, uint32(c.Flags))
}

// aadBuf fits any chunk's additional data.
type aadBuf [len(chunkAADDomain) + 4 + chunk.MaxBroadcastLen + 4 + 8 + 4]byte

// nonceLog is what an epoch has sealed: per kind, the highest seq.
type nonceLog struct {
	used [kinds]bool
	last [kinds]uint64
}

// take records the nonce of (kind, seq), refusing one not above the last of
// its kind.
func (l *nonceLog) take(kind int, seq uint64) error {
	if l.used[kind] && seq <= l.last[kind] {
		return fmt.Errorf("%w: seq %d (kind %d) after %d", ErrNonceReused, seq, kind, l.last[kind])
	}
	l.used[kind], l.last[kind] = true, seq
	return nil
}

// SealChunk seals an unsigned chunk of the epoch's broadcast: it sets the
// chunk's Epoch and replaces its Payload with the ciphertext (a new slice;
// the plaintext is not touched). Sign the chunk afterwards. It refuses a
// chunk whose nonce this epoch has used (see above), one already sealed or
// signed, and one whose ciphertext would be over chunk.MaxPayloadSize.
func (e *Epoch) SealChunk(c *chunk.Chunk) error {
	switch {
	case c.Broadcast != e.keys.broadcast:
		return fmt.Errorf("%w: sealing a chunk of %q", ErrWrongBroadcast, c.Broadcast)
	case c.Epoch != 0 || c.Signature != nil:
		return fmt.Errorf("%w: seq %d", ErrSealed, c.Seq)
	case len(c.Payload) > chunk.MaxPayloadSize-Overhead:
		return fmt.Errorf("%w: payload of %d bytes", ErrMalformed, len(c.Payload))
	case c.Seq > maxSealSeq:
		return fmt.Errorf("%w: seq %d is over %d", ErrMalformed, c.Seq, uint64(maxSealSeq))
	}
	if err := e.nonces.take(chunkKind(c.Flags), c.Seq); err != nil {
		return err
	}
	epoch := e.keys.epoch
	nonce := chunkNonce(epoch, c.Flags, c.Seq)
	var buf aadBuf
	c.Payload = e.keys.video.Seal(make([]byte, 0, len(c.Payload)+Overhead), nonce[:], c.Payload, chunkAAD(buf[:0], c, epoch))
	c.Epoch = epoch
	return nil
}

// OpenChunk opens a private chunk's payload, appending the plaintext to dst
// (which may be nil) and returning it. It refuses a chunk of another
// broadcast or epoch (ErrWrongBroadcast, ErrWrongEpoch: a public chunk has
// none) and one whose ciphertext, header or key is not what was sealed
// (ErrOpen). It does not check the signature: relays and members verify the
// chunk (chunk.Chunk.Verify) before they use it; a member opens it before
// it plays or stores the plaintext.
func (k *Keys) OpenChunk(dst []byte, c *chunk.Chunk) ([]byte, error) {
	switch {
	case c.Broadcast != k.broadcast:
		return nil, fmt.Errorf("%w: a chunk of %q", ErrWrongBroadcast, clip(c.Broadcast))
	case c.Epoch != k.epoch:
		return nil, fmt.Errorf("%w: chunk %d of epoch %d, keys of %d", ErrWrongEpoch, c.Seq, c.Epoch, k.epoch)
	case c.Seq > maxSealSeq || len(c.Broadcast) > chunk.MaxBroadcastLen:
		return nil, fmt.Errorf("%w: chunk %d", ErrOpen, c.Seq)
	}
	if n := len(c.Payload) - Overhead; n > 0 && cap(dst)-len(dst) < n {
		// The AEAD would grow dst itself, with a copy that clears every
		// byte of the new slice first; a 62.5 KB part's clearing, most of
		// it page faults on fresh memory, cost five times its decryption.
		// A slice made to size is not cleared when its memory is fresh.
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	nonce := chunkNonce(c.Epoch, c.Flags, c.Seq)
	var buf aadBuf
	out, err := k.video.Open(dst, nonce[:], c.Payload, chunkAAD(buf[:0], c, c.Epoch))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d of epoch %d", ErrOpen, c.Seq, c.Epoch)
	}
	return out, nil
}

// clip shortens what an error message quotes of untrusted text.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
