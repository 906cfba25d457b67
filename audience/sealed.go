package audience

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// Sizes of sealed messages.
const (
	// MaxChatSize bounds a chat message's plaintext (the chat envelope's
	// own limit, 128 KiB).
	MaxChatSize = 128 << 10
	// MaxReplaySize bounds a replay secret's plaintext.
	MaxReplaySize = 4 << 20
	// MaxSealedSize bounds a Sealed's encoding.
	MaxSealedSize = MaxReplaySize + 64
	nonceSize     = 12
)

// A Sealed is a message sealed under one of an epoch's keys with a random
// nonce: a chat envelope under the chat key, a replay's secret part (the
// comment log, the epochs' secrets a late member needs) under the replay
// key. Its epoch is in the clear, so a receiver knows which keys to try.
//
// Why a random nonce here, where chunks derive theirs: every member seals
// chat messages under the same chat key, with no counter they could share,
// and a member's node restarts without remembering one. 96 random bits
// collide with probability about n²/2⁹⁷ after n messages under one key; an
// epoch lasts minutes and chat is rate-limited, so n stays far below the
// 2³² that NIST allows for random GCM nonces.
type Sealed struct {
	Epoch      uint32
	Nonce      [nonceSize]byte
	Ciphertext []byte
}

// Marshal returns the sealed message's wire form.
func (s *Sealed) Marshal() []byte {
	b, err := deterministic.Marshal(&audiencepb.Sealed{Epoch: s.Epoch, Nonce: s.Nonce[:], Ciphertext: s.Ciphertext})
	if err != nil {
		return nil
	}
	return b
}

// ParseSealed decodes a sealed message and checks its form; open it with
// the keys of its epoch (Keys.OpenChat, Keys.OpenReplay).
func ParseSealed(b []byte) (*Sealed, error) {
	if len(b) > MaxSealedSize {
		return nil, fmt.Errorf("%w: sealed message of %d bytes", ErrMalformed, len(b))
	}
	var pb audiencepb.Sealed
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: sealed message: %w", ErrMalformed, err)
	}
	switch {
	case pb.Epoch == 0:
		return nil, fmt.Errorf("%w: sealed message of epoch 0", ErrMalformed)
	case len(pb.Nonce) != nonceSize:
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(pb.Nonce))
	case len(pb.Ciphertext) < Overhead:
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMalformed, len(pb.Ciphertext))
	}
	s := &Sealed{Epoch: pb.Epoch, Ciphertext: pb.Ciphertext}
	copy(s.Nonce[:], pb.Nonce)
	return s, nil
}

const (
	chatAADDomain   = "peerscope/audience/chat/1\x00"
	replayAADDomain = "peerscope/audience/replay/1\x00"
)

// sealedAAD is domain ‖ u32be len(broadcast) ‖ broadcast ‖ u32be epoch ‖
// u32be len(who) ‖ who: who is the sender's peer ID for chat, the label for
// a replay secret.
func sealedAAD(domain, broadcast string, epoch uint32, who string) []byte {
	b := make([]byte, 0, len(domain)+4+len(broadcast)+4+4+len(who))
	b = append(b, domain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(broadcast)))
	b = append(b, broadcast...)
	b = binary.BigEndian.AppendUint32(b, epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(who)))
	return append(b, who...)
}

func (k *Keys) seal(rand io.Reader, aead cipher.AEAD, aad, plain []byte) ([]byte, error) {
	s := &Sealed{Epoch: k.epoch}
	if _, err := io.ReadFull(rand, s.Nonce[:]); err != nil {
		return nil, fmt.Errorf("audience: reading randomness: %w", err)
	}
	s.Ciphertext = aead.Seal(nil, s.Nonce[:], plain, aad)
	return s.Marshal(), nil
}

func (k *Keys) open(aead cipher.AEAD, aad []byte, s *Sealed, what string) ([]byte, error) {
	if s.Epoch != k.epoch {
		return nil, fmt.Errorf("%w: %s of epoch %d, keys of %d", ErrWrongEpoch, what, s.Epoch, k.epoch)
	}
	out, err := aead.Open(nil, s.Nonce[:], s.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %s of epoch %d", ErrOpen, what, s.Epoch)
	}
	return out, nil
}

// SealChat seals a chat message (the chat envelope's bytes) from sender
// under the chat key, with a nonce drawn from rand, and returns the Sealed
// message's encoding for the private topic. The additional data binds it
// to the broadcast, the epoch and the sender: the topic's signing names the
// author, and a member cannot pass off another's message as its own (nor
// move it to another broadcast or epoch).
func (k *Keys) SealChat(rand io.Reader, sender peer.ID, msg []byte) ([]byte, error) {
	if len(msg) > MaxChatSize {
		return nil, fmt.Errorf("%w: chat message of %d bytes", ErrMalformed, len(msg))
	}
	return k.seal(rand, k.chat, sealedAAD(chatAADDomain, k.broadcast, k.epoch, string(sender)), msg)
}

// OpenChat opens a chat message that sender (the topic message's author)
// sealed: ErrWrongEpoch for another epoch's, ErrOpen for anything altered,
// sealed by another sender, or of another broadcast.
func (k *Keys) OpenChat(sender peer.ID, s *Sealed) ([]byte, error) {
	if len(s.Ciphertext) > MaxChatSize+Overhead {
		return nil, fmt.Errorf("%w: chat message of %d bytes", ErrMalformed, len(s.Ciphertext))
	}
	return k.open(k.chat, sealedAAD(chatAADDomain, k.broadcast, k.epoch, string(sender)), s, "chat message")
}

// SealReplay seals what a replay keeps beside its chunks (label names what
// it is, e.g. "comments") under the replay key, with a nonce from rand.
func (k *Keys) SealReplay(rand io.Reader, label string, plain []byte) ([]byte, error) {
	if len(plain) > MaxReplaySize {
		return nil, fmt.Errorf("%w: replay secret of %d bytes", ErrMalformed, len(plain))
	}
	return k.seal(rand, k.replay, sealedAAD(replayAADDomain, k.broadcast, k.epoch, label), plain)
}

// OpenReplay opens what SealReplay sealed under label.
func (k *Keys) OpenReplay(label string, s *Sealed) ([]byte, error) {
	return k.open(k.replay, sealedAAD(replayAADDomain, k.broadcast, k.epoch, label), s, "replay secret "+clip(label))
}
