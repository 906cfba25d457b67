package audience

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/peerscope/peerscope/link"
)

// SecretSize is the length of an epoch secret and of a broadcast secret.
const SecretSize = 32

// Secrets are what a bundle carries: the epoch's secret, from which its
// content keys are derived, and the broadcast's secret, the same in every
// epoch of a broadcast, from which what must not change at a rekey is
// derived (the private chat topic's name).
type Secrets struct {
	Epoch     [SecretSize]byte
	Broadcast [SecretSize]byte
}

// NewBroadcastSecret draws a broadcast secret: once per broadcast (and
// again by a broadcaster that wants its topic to move).
func NewBroadcastSecret(rand io.Reader) ([SecretSize]byte, error) {
	var s [SecretSize]byte
	if _, err := io.ReadFull(rand, s[:]); err != nil {
		return s, fmt.Errorf("audience: reading randomness: %w", err)
	}
	return s, nil
}

// NextEpoch returns the number of the epoch that follows prev (0 before
// the first): the current Unix second, or prev+1 if that is not more. A
// broadcaster that restarts and has forgotten its last epoch still takes a
// new number as long as its clock has not gone back, so members never see
// two secrets under one number. (Key uniqueness does not rest on it: every
// epoch's secret is drawn afresh.) It returns 0 once the numbers are spent,
// in the year 2106.
func NextEpoch(prev uint32, now time.Time) uint32 {
	if prev == ^uint32(0) {
		return 0
	}
	n := prev + 1
	if s := now.Unix(); s > int64(n) && s <= int64(^uint32(0)) {
		n = uint32(s)
	}
	return n
}

// Keys are an epoch's content keys, derived from its secrets (DeriveKeys):
// video (the chunks' payloads), chat (the private topic's messages) and
// replay (what a replay seals beside its chunks), each AES-256-GCM. A
// member gets them from a bundle, the broadcaster from its Epoch. Keys open
// chunks but cannot seal them: only an Epoch, which keeps the nonce
// bookkeeping, can. They are safe for concurrent use.
type Keys struct {
	broadcast string
	epoch     uint32
	video     cipher.AEAD
	chat      cipher.AEAD
	replay    cipher.AEAD
	topic     string
}

// Key-schedule labels: HKDF-SHA256 with the epoch secret as the input key
// (it is uniformly random: no salt), info = label ‖ u32be len(broadcast) ‖
// broadcast ‖ u32be epoch. The topic's, from the broadcast secret, has no
// epoch.
const (
	labelVideo  = "peerscope/audience/1 video\x00"
	labelChat   = "peerscope/audience/1 chat\x00"
	labelReplay = "peerscope/audience/1 replay\x00"
	labelTopic  = "peerscope/audience/1 topic\x00"
)

// DeriveKeys derives an epoch's keys from its secrets.
func DeriveKeys(broadcast string, epoch uint32, s Secrets) (*Keys, error) {
	if epoch == 0 {
		return nil, fmt.Errorf("%w: epoch 0 is a public broadcast's", ErrMalformed)
	}
	if err := checkBroadcast(broadcast); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	k := &Keys{broadcast: broadcast, epoch: epoch}
	for _, d := range []struct {
		label string
		aead  *cipher.AEAD
	}{{labelVideo, &k.video}, {labelChat, &k.chat}, {labelReplay, &k.replay}} {
		key, err := hkdf.Key(sha256.New, s.Epoch[:], nil, string(keyInfo(d.label, broadcast, epoch, true)), 32)
		if err != nil {
			return nil, fmt.Errorf("audience: deriving keys: %w", err)
		}
		if *d.aead, err = newGCM(key); err != nil {
			return nil, err
		}
	}
	t, err := hkdf.Key(sha256.New, s.Broadcast[:], nil, string(keyInfo(labelTopic, broadcast, 0, false)), 20)
	if err != nil {
		return nil, fmt.Errorf("audience: deriving keys: %w", err)
	}
	k.topic = link.Encoding.EncodeToString(t)
	return k, nil
}

func keyInfo(label, broadcast string, epoch uint32, withEpoch bool) []byte {
	b := make([]byte, 0, len(label)+4+len(broadcast)+4)
	b = append(b, label...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(broadcast)))
	b = append(b, broadcast...)
	if withEpoch {
		b = binary.BigEndian.AppendUint32(b, epoch)
	}
	return b
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("audience: %w", err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("audience: %w", err)
	}
	return g, nil
}

// Broadcast returns the broadcast the keys are for.
func (k *Keys) Broadcast() string { return k.broadcast }

// Epoch returns the epoch the keys are for.
func (k *Keys) Epoch() uint32 { return k.epoch }

// Topic returns the private chat topic's name: 32 base32 characters
// derived from the broadcast secret, the same in every epoch, which say
// nothing of the broadcast to whoever sees the topic without the secret.
// The chat package puts its protocol's prefix before it.
func (k *Keys) Topic() string { return k.topic }

// An Epoch is the broadcaster's side of one key epoch: a fresh secret, the
// keys derived from it, and the record of the chunk nonces used, so that
// none is used twice (SealChunk). An Epoch can only be made by NewEpoch,
// which draws the secret: there is no way to seal with a secret from
// elsewhere, so a restarted broadcaster always seals under a new key. It is
// not safe for concurrent use (the publisher seals from one goroutine).
type Epoch struct {
	keys    *Keys
	secrets Secrets
	nonces  nonceLog
}

// NewEpoch starts epoch number (not 0; see NextEpoch) of broadcast with a
// secret drawn from rand and the broadcast's secret.
func NewEpoch(rand io.Reader, broadcast string, number uint32, broadcastSecret [SecretSize]byte) (*Epoch, error) {
	e := &Epoch{}
	if _, err := io.ReadFull(rand, e.secrets.Epoch[:]); err != nil {
		return nil, fmt.Errorf("audience: reading randomness: %w", err)
	}
	e.secrets.Broadcast = broadcastSecret
	k, err := DeriveKeys(broadcast, number, e.secrets)
	if err != nil {
		return nil, err
	}
	e.keys = k
	return e, nil
}

// Keys returns the epoch's keys (to open, and to seal chat and replay
// messages).
func (e *Epoch) Keys() *Keys { return e.keys }

// Number returns the epoch's number.
func (e *Epoch) Number() uint32 { return e.keys.epoch }
