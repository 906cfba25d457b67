package chat

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
)

// A peer that joins late has missed the actions in force. It learns them
// from any peer of the topic over StateProtocol: it opens a stream and
// reads frames (a length as an unsigned varint, then a Signed action) until
// the answerer closes it. Every action carries the broadcaster's signature,
// so any peer may answer and none can forge; one that withholds actions is
// caught by the next beat, whose digest will still differ, and the joiner
// asks another. The broadcaster's beat is what says "in sync".

const (
	// maxStateFrame bounds one frame of the state stream.
	maxStateFrame = maxActionSize + 512
	// fetchTimeout bounds one exchange.
	fetchTimeout = 10 * time.Second
	// maxFetchPeers is how many peers one fetch tries.
	maxFetchPeers = 4
	// maxStateBytes bounds a whole state answer: every register's action
	// is small but for a followers-only list, and a peer repeating one
	// large action it was given must not make us hold gigabytes.
	maxStateBytes = 16 << 20
)

// fetch asks peers for the moderation state, first those the machine named,
// then the topic's, and hands the owner the first answer that verifies.
func (r *Room) fetch(peers []peer.ID) {
	defer r.wg.Done()
	for _, p := range r.topic.ListPeers() {
		if !slices.Contains(peers, p) {
			peers = append(peers, p)
		}
	}
	var got []*signedAction
	tried := 0
	for _, p := range peers {
		if p == "" || p == r.h.ID() || r.h.Network().Connectedness(p) != network.Connected {
			continue
		}
		if tried++; tried > maxFetchPeers {
			break
		}
		actions, err := r.fetchFrom(p)
		if err == nil {
			got = append(got, actions...)
			if !r.m.isBroadcaster {
				break
			}
			// The broadcaster recovering after a restart asks several:
			// a peer that joined since holds only what the restarted
			// broadcaster's empty beats showed it, nothing.
			continue
		}
		r.log.Debug("state fetch", "peer", shortID(p), "err", err)
		if r.ctx.Err() != nil {
			break
		}
	}
	select {
	case r.fetched <- got:
	case <-r.quit:
	}
}

func (r *Room) fetchFrom(p peer.ID) ([]*signedAction, error) {
	ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
	defer cancel()
	// A viewer behind NAT may be reached only through a relay (a limited
	// connection): the state is small enough to fetch over one.
	s, err := r.h.NewStream(network.WithAllowLimitedConn(ctx, "peerscope chat state"), p, r.proto)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(fetchTimeout))
	_ = s.CloseWrite()
	actions, err := readState(bufio.NewReader(s), r.m.cfg.brKey.Verify)
	if err != nil {
		_ = s.Reset()
		return nil, err
	}
	return actions, nil
}

// readState reads a state stream: signed actions until EOF, each checked
// with verify (the broadcaster key's). One bad frame fails the whole
// answer.
func readState(br *bufio.Reader, verify func(data, sig []byte) (bool, error)) ([]*signedAction, error) {
	var out []*signedAction
	var total uint64
	for {
		n, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: frame length: %w", ErrMalformed, err)
		}
		if n > maxStateFrame {
			return nil, fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, n)
		}
		if len(out) >= maxRegisters {
			return nil, fmt.Errorf("%w: more than %d actions", ErrTooLarge, maxRegisters)
		}
		if total += n; total > maxStateBytes {
			return nil, fmt.Errorf("%w: a state of more than %d bytes", ErrTooLarge, maxStateBytes)
		}
		b, err := pbwire.ReadN(br, n)
		if err != nil {
			return nil, err
		}
		s, err := decodeSigned(b)
		if err != nil {
			return nil, err
		}
		if ok, err := verify(append([]byte(actionDomain), s.body...), s.sig); err != nil || !ok {
			return nil, ErrBadSignature
		}
		out = append(out, s)
	}
}

// appendState appends actions as state frames.
func appendState(b []byte, actions [][]byte) []byte {
	for _, a := range actions {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

// serveState answers a state request with the actions in force. A peer
// past its share of the host's chat-state streams (p2plimit) is reset.
func (r *Room) serveState(s network.Stream) {
	if p2plimit.Accept(s, p2plimit.ServiceChatState) != nil {
		return
	}
	if p := r.cfg.Private; p != nil && p.Member != nil && !p.Member(s.Conn().RemotePeer()) {
		_ = s.Reset() // a private room's state is its members'
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = s.Reset()
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	select {
	case r.serving <- struct{}{}:
		defer func() { <-r.serving }()
	default:
		_ = s.Reset() // busy: the asker tries another peer
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
	defer cancel()
	var st [][]byte
	if err := r.call(ctx, func() { st = r.m.state() }); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(fetchTimeout))
	if _, err := s.Write(appendState(nil, st)); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}
