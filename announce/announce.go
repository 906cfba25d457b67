package announce

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/announcepb"
)

// MaxFrame bounds an announcement frame (and a request), in bytes.
const MaxFrame = 4096

// MaxTitle is the longest title, in characters (CleanTitle cuts longer ones).
const MaxTitle = 200

// domain separates announcement signatures from every other use of the
// broadcaster's key (chunks and replay manifests are signed under others).
const domain = "peerscope/announcement/1\x00"

var (
	// ErrInvalid wraps an announcement that does not decode, whose
	// signature does not verify, or that is about another broadcast.
	ErrInvalid = errors.New("announce: bad announcement")
	// ErrNotHeld: the peer asked holds no announcement of the broadcast.
	ErrNotHeld = errors.New("announce: the peer has no announcement of the broadcast")
)

// Announcement is what a broadcaster says about its broadcast besides the
// media: its title, when it started, whether it has ended. It is signed with
// the broadcaster's key, so any node may pass it on, and carries a version
// that grows with every change, so that the newest wins.
type Announcement struct {
	Broadcast string
	Title     string
	Started   time.Time
	Ended     bool
	// Version grows with every change: the broadcaster's clock in Unix
	// nanoseconds when it made this version (or one more than the last).
	Version uint64
	// Bitrate is the stream's measured bitrate in bit/s (0 until known):
	// a viewer sizes its child slots with it.
	Bitrate int64
	// Stripes and Parity are the broadcast's striping (package
	// mesh/stripe), fixed when it starts: 0 stripes, one tree.
	Stripes, Parity int
}

// Signed is an announcement with the bytes that were signed, as they came:
// what a node keeps and passes on. The zero Signed holds nothing.
type Signed struct {
	Announcement
	body, sig []byte
}

// Held reports whether s holds a signed announcement.
func (s Signed) Held() bool { return s.sig != nil }

// encode fails only on a string that is not UTF-8 (CleanTitle makes any
// title one that is).
func (a *Announcement) encode() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&announcepb.Announcement{
		Broadcast: a.Broadcast, Title: a.Title, Started: pbwire.UnixNano(a.Started),
		Ended: a.Ended, Version: a.Version, Bitrate: a.Bitrate,
		Stripes: uint32(a.Stripes), Parity: uint32(a.Parity),
	})
}

func decodeBody(b []byte) (Announcement, error) {
	var pb announcepb.Announcement
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return Announcement{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case len(pb.Broadcast) > MaxFrame || len(pb.Title) > MaxFrame:
		return Announcement{}, fmt.Errorf("%w: a string over %d bytes", ErrInvalid, MaxFrame)
	case pb.Bitrate < 0:
		return Announcement{}, fmt.Errorf("%w: negative bitrate", ErrInvalid)
	case pb.Stripes > chunk.MaxFragments || pb.Parity > chunk.MaxFragments || pb.Stripes+pb.Parity > chunk.MaxFragments ||
		(pb.Stripes == 0 && pb.Parity != 0):
		return Announcement{}, fmt.Errorf("%w: striped %d+%d", ErrInvalid, pb.Stripes, pb.Parity)
	}
	a := Announcement{Broadcast: pb.Broadcast, Title: pb.Title, Ended: pb.Ended, Version: pb.Version, Bitrate: pb.Bitrate,
		Stripes: int(pb.Stripes), Parity: int(pb.Parity)}
	if pb.Started != 0 {
		a.Started = time.Unix(0, pb.Started)
	}
	return a, nil
}

// Sign encodes a and signs it with the broadcaster's key.
func Sign(a Announcement, key crypto.PrivKey) (Signed, error) {
	body, err := a.encode()
	if err != nil {
		return Signed{}, fmt.Errorf("announce: encode: %w", err)
	}
	sig, err := key.Sign(append([]byte(domain), body...))
	if err != nil {
		return Signed{}, fmt.Errorf("announce: sign: %w", err)
	}
	return Signed{Announcement: a, body: body, sig: sig}, nil
}

// Encode returns the Signed message: the frame's content.
func (s Signed) Encode() []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&announcepb.Signed{Body: s.body, Signature: s.sig})
	return b
}

// Decode decodes a Signed message and checks it: it must be about
// broadcast and signed by key. Its errors wrap ErrInvalid.
func Decode(b []byte, broadcast string, key ed25519.PublicKey) (Signed, error) {
	var pb announcepb.Signed
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return Signed{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(pb.Signature) != ed25519.SignatureSize || len(key) != ed25519.PublicKeySize {
		return Signed{}, fmt.Errorf("%w: no signature", ErrInvalid)
	}
	if !ed25519.Verify(key, append([]byte(domain), pb.Body...), pb.Signature) {
		return Signed{}, fmt.Errorf("%w: the signature does not verify", ErrInvalid)
	}
	a, err := decodeBody(pb.Body)
	if err != nil {
		return Signed{}, err
	}
	if a.Broadcast != broadcast {
		return Signed{}, fmt.Errorf("%w: about broadcast %.80q, not %.80q", ErrInvalid, a.Broadcast, broadcast)
	}
	return Signed{Announcement: a, body: pb.Body, sig: pb.Signature}, nil
}

// CleanTitle removes control characters (and bytes that are not UTF-8) and
// spaces at either end, and cuts a title to MaxTitle characters.
func CleanTitle(t string) string {
	t = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, t)
	t = strings.TrimSpace(t)
	if utf8.RuneCountInString(t) > MaxTitle {
		t = strings.TrimSpace(string([]rune(t)[:MaxTitle]))
	}
	return t
}
