package announce

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/announcepb"
)

// ProtocolID is the request/response protocol that carries a broadcast's
// announcement: the asker writes one Request frame naming the broadcast, the
// answerer one frame with the Signed announcement (or an empty frame when it
// has none) and closes the stream. The broadcaster answers, and so does
// every node that holds a verified copy. (The generated code writes the
// bytes the hand-written codec of 1.0.0 wrote, so the ID stays.)
const ProtocolID protocol.ID = "/peerscope/info/1.0.0"

// Timeout bounds one exchange, either side.
const Timeout = 5 * time.Second

// Serve answers one request on s with what lookup holds for the broadcast
// asked about; it closes s. A malformed request resets the stream, and so
// does a peer past its share of the host's info streams (p2plimit).
func Serve(s network.Stream, lookup func(broadcast string) (Signed, bool)) {
	if p2plimit.Accept(s, p2plimit.ServiceInfo) != nil {
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(Timeout))
	b, err := pbwire.ReadFrame(bufio.NewReader(io.LimitReader(s, MaxFrame+16)), MaxFrame)
	if err != nil {
		_ = s.Reset()
		return
	}
	var req announcepb.Request
	if err := pbwire.Unmarshal(b, &req); err != nil {
		_ = s.Reset()
		return
	}
	var answer []byte
	if a, ok := lookup(req.Broadcast); ok && a.Held() {
		answer = a.Encode()
	}
	_ = pbwire.WriteFrame(s, answer)
}

// Fetch asks one peer for a broadcast's announcement and checks it (about
// broadcast, signed by key). It gives ErrNotHeld when the peer has none.
func Fetch(ctx context.Context, h host.Host, p peer.AddrInfo, broadcast string, key ed25519.PublicKey) (Signed, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		h.Peerstore().AddAddrs(p.ID, p.Addrs, 10*time.Minute)
	}
	// The announcement is small: a relayed (limited) connection carries it.
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "peerscope announce"), p.ID, ProtocolID)
	if err != nil {
		return Signed{}, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	req, err := proto.Marshal(&announcepb.Request{Broadcast: broadcast})
	if err != nil {
		return Signed{}, fmt.Errorf("%w: broadcast ID %.80q", ErrInvalid, broadcast)
	}
	if err := pbwire.WriteFrame(s, req); err != nil {
		_ = s.Reset()
		return Signed{}, err
	}
	_ = s.CloseWrite()
	b, err := pbwire.ReadFrame(bufio.NewReader(s), MaxFrame)
	if err != nil {
		_ = s.Reset()
		return Signed{}, fmt.Errorf("announce: %w", err)
	}
	if len(b) == 0 {
		return Signed{}, ErrNotHeld
	}
	return Decode(b, broadcast, key)
}
