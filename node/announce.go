package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
)

// AnnounceProtocol is the request/response protocol that carries a
// broadcast's announcement: the asker writes one frame naming the
// broadcast, the answerer one frame with the signed announcement (or an
// empty frame when it has none) and closes the stream. The broadcaster
// answers, and so does every node that holds a verified copy.
const AnnounceProtocol protocol.ID = "/peerscope/info/1.0.0"

// maxAnnounceFrame bounds an announcement frame (and a request).
const maxAnnounceFrame = 4096

// MaxTitle is the longest title, in characters (longer ones are cut).
const MaxTitle = 200

// announceDomain separates announcement signatures from every other use of
// the broadcaster's key (chunks are signed under another domain).
const announceDomain = "peerscope/announcement/1\x00"

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
}

// The wire form (protobuf, hand-written like mesh's codec; add fields, never
// renumber them):
//
//	message Signed {            // the announcement frame
//	  bytes body = 1;           // an Announcement, encoded
//	  bytes signature = 2;      // ed25519 over announceDomain ‖ body
//	}
//	message Announcement {
//	  string broadcast = 1;
//	  string title = 2;
//	  int64 started = 3;        // Unix nanoseconds
//	  bool ended = 4;
//	  uint64 version = 5;
//	  int64 bitrate = 6;        // bit/s
//	}
//	message Request { string broadcast = 1; }
//
// The signature covers the body as it was sent, so a node that does not know
// a newer field still passes the announcement on intact.

// signedAnnouncement is an announcement with the bytes that were signed.
type signedAnnouncement struct {
	Announcement
	body, sig []byte
}

func (a *Announcement) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, a.Broadcast)
	if a.Title != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, a.Title)
	}
	if !a.Started.IsZero() {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Started.UnixNano()))
	}
	if a.Ended {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, a.Version)
	if a.Bitrate > 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Bitrate))
	}
	return b
}

func (a *Announcement) unmarshal(b []byte) error {
	*a = Announcement{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed("tag")
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || len(v) > maxAnnounceFrame || !utf8.Valid(v) {
				return errMalformed("string")
			}
			if num == 1 {
				a.Broadcast = string(v)
			} else {
				a.Title = string(v)
			}
			b = b[n:]
		case num >= 3 && num <= 6 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errMalformed("varint")
			}
			switch num {
			case 3:
				a.Started = time.Unix(0, int64(v))
			case 4:
				a.Ended = v != 0
			case 5:
				a.Version = v
			case 6:
				if int64(v) < 0 {
					return errMalformed("bitrate")
				}
				a.Bitrate = int64(v)
			}
			b = b[n:]
		case num >= 1 && num <= 6:
			return errMalformed(fmt.Sprintf("field %d has wire type %d", num, typ))
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errMalformed("unknown field")
			}
			b = b[n:]
		}
	}
	return nil
}

func errMalformed(what string) error {
	return fmt.Errorf("%w: malformed %s", ErrBadAnnouncement, what)
}

// signAnnouncement encodes and signs a with the broadcaster's key.
func signAnnouncement(a Announcement, key crypto.PrivKey) (signedAnnouncement, error) {
	body := a.marshal()
	sig, err := key.Sign(append([]byte(announceDomain), body...))
	if err != nil {
		return signedAnnouncement{}, err
	}
	return signedAnnouncement{Announcement: a, body: body, sig: sig}, nil
}

// encode returns the Signed message.
func (s *signedAnnouncement) encode() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, s.body)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, s.sig)
	return b
}

// decodeAnnouncement decodes a Signed message and checks it: it must be
// about broadcast and signed by key.
func decodeAnnouncement(b []byte, broadcast string, key ed25519.PublicKey) (signedAnnouncement, error) {
	var s signedAnnouncement
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, errMalformed("tag")
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, errMalformed("bytes")
			}
			if num == 1 {
				s.body = v
			} else {
				s.sig = v
			}
			b = b[n:]
		case num == 1 || num == 2:
			return s, errMalformed(fmt.Sprintf("field %d has wire type %d", num, typ))
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s, errMalformed("unknown field")
			}
			b = b[n:]
		}
	}
	if len(s.sig) != ed25519.SignatureSize {
		return s, fmt.Errorf("%w: no signature", ErrBadAnnouncement)
	}
	if !ed25519.Verify(key, append([]byte(announceDomain), s.body...), s.sig) {
		return s, fmt.Errorf("%w: the signature does not verify", ErrBadAnnouncement)
	}
	if err := s.Announcement.unmarshal(s.body); err != nil {
		return s, err
	}
	if s.Broadcast != broadcast {
		return s, fmt.Errorf("%w: about broadcast %q, not %q", ErrBadAnnouncement, clip(s.Broadcast), clip(broadcast))
	}
	return s, nil
}

// cleanTitle removes control characters and cuts a title to MaxTitle
// characters.
func cleanTitle(t string) string {
	t = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, t)
	t = strings.TrimSpace(t)
	if utf8.RuneCountInString(t) > MaxTitle {
		t = string([]rune(t)[:MaxTitle])
	}
	return t
}

// --- the protocol ---

func writeFrame(w io.Writer, b []byte) error {
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// readFrame reads one frame of at most maxAnnounceFrame bytes.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxAnnounceFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrBadAnnouncement, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// announceTimeout bounds one exchange, either side.
const announceTimeout = 5 * time.Second

// handleAnnounce answers one request from the node's broadcasts.
func (n *Node) handleAnnounce(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(announceTimeout))
	req, err := readFrame(bufio.NewReader(io.LimitReader(s, maxAnnounceFrame+16)))
	if err != nil {
		_ = s.Reset()
		return
	}
	var ask Announcement // a Request has the broadcast in field 1 too
	if err := ask.unmarshal(req); err != nil {
		_ = s.Reset()
		return
	}
	var answer []byte
	if b := n.lookup(ask.Broadcast); b != nil {
		if a, ok := b.signed(); ok {
			answer = a.encode()
		}
	}
	_ = writeFrame(s, answer)
}

// errNoAnnouncement: the peer asked has none for the broadcast.
var errNoAnnouncement = errors.New("node: the peer has no announcement for the broadcast")

// fetchAnnouncement asks one peer for a broadcast's announcement.
func (n *Node) fetchAnnouncement(ctx context.Context, p peer.AddrInfo, broadcast string, key ed25519.PublicKey) (signedAnnouncement, error) {
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(p.ID, p.Addrs, 10*time.Minute)
	}
	// The announcement is small: a relayed (limited) connection carries it.
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "peerscope announce"), p.ID, AnnounceProtocol)
	if err != nil {
		return signedAnnouncement{}, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	req := Announcement{Broadcast: broadcast}
	if err := writeFrame(s, req.marshalRequest()); err != nil {
		_ = s.Reset()
		return signedAnnouncement{}, err
	}
	_ = s.CloseWrite()
	b, err := readFrame(bufio.NewReader(s))
	if err != nil {
		_ = s.Reset()
		return signedAnnouncement{}, err
	}
	if len(b) == 0 {
		return signedAnnouncement{}, errNoAnnouncement
	}
	return decodeAnnouncement(b, broadcast, key)
}

// marshalRequest encodes a Request: the broadcast alone.
func (a *Announcement) marshalRequest() []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendString(b, a.Broadcast)
}
