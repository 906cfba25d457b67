package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/replay"
)

// ReplayProtocol is the request/response protocol of replays: the asker
// writes one Request frame, the answerer one Response frame and closes.
// Version 1.1.0 names blocks by the hash of the chunk's one encoding
// (chunk.Chunk.Bytes); 1.0.0 nodes hashed another, so the two refuse each
// other at protocol negotiation rather than list blocks the other cannot find.
//
//	message Request  { uint32 kind = 1; string broadcast = 2; }
//	  // kind 1: the manifest; kind 2: a view (the asker watches the replay)
//	message Response { bytes manifest = 1;      // signed, empty when none
//	                   repeated string holders = 2; // multiaddrs ending in /p2p/<ID>
//	                   uint64 views = 3; }      // replay views this node knows of
//
// Every node that holds a replay's manifest answers, so a replay needs
// nothing from its broadcaster once the broadcast is over. A view is
// authenticated by the libp2p connection (the asker's peer ID); the
// broadcaster counts distinct ones.
const ReplayProtocol protocol.ID = "/peerscope/replay/1.1.0"

const (
	replayAskManifest = 1
	replayAskView     = 2

	maxReplayRequest  = 1024
	maxReplayResponse = replay.MaxManifestSize + 64<<10
	maxHolders        = 16
	replayTimeout     = 10 * time.Second
)

// ErrBadReplay wraps a malformed replay request or answer.
var ErrBadReplay = errors.New("node: bad replay message")

type replayRequest struct {
	kind      uint64
	broadcast string
}

func (r replayRequest) marshal() []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, r.kind)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, r.broadcast)
}

func (r *replayRequest) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			r.kind = v
		case 2:
			r.broadcast = string(raw)
		}
		return nil
	})
	if err == nil && (r.kind != replayAskManifest && r.kind != replayAskView || r.broadcast == "") {
		err = errors.New("unknown kind or no broadcast")
	}
	if err != nil {
		return fmt.Errorf("%w: request: %w", ErrBadReplay, err)
	}
	return nil
}

type replayResponse struct {
	manifest []byte
	holders  []peer.AddrInfo
	views    uint64
}

func (r *replayResponse) marshal() []byte {
	var b []byte
	if len(r.manifest) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, r.manifest)
	}
	for _, h := range r.holders {
		addrs, err := peer.AddrInfoToP2pAddrs(&h)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, a.String())
		}
	}
	if r.views > 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, r.views)
	}
	return b
}

func (r *replayResponse) unmarshal(b []byte) error {
	var addrs []ma.Multiaddr
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 3, 1, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			r.manifest = raw
		case 2:
			if len(addrs) >= MaxLinkPeers*4 {
				return nil // more than asked for: ignored
			}
			a, err := ma.NewMultiaddr(string(raw))
			if err != nil {
				return fmt.Errorf("holder: %w", err)
			}
			addrs = append(addrs, a)
		case 3:
			r.views = v
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: response: %w", ErrBadReplay, err)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return fmt.Errorf("%w: holders: %w", ErrBadReplay, err)
	}
	r.holders = infos
	return nil
}

// readReplayFrame reads one frame of at most max bytes.
func readReplayFrame(r *bufio.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrBadReplay, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// handleReplay answers one replay request.
func (n *Node) handleReplay(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(replayTimeout))
	b, err := readReplayFrame(bufio.NewReader(io.LimitReader(s, maxReplayRequest+16)), maxReplayRequest)
	if err != nil {
		_ = s.Reset()
		return
	}
	var req replayRequest
	if err := req.unmarshal(b); err != nil {
		_ = s.Reset()
		return
	}
	from := s.Conn().RemotePeer()
	var resp replayResponse
	switch req.kind {
	case replayAskManifest:
		ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
		resp.manifest = n.signedManifest(ctx, req.broadcast)
		cancel()
		if resp.manifest != nil {
			resp.holders = n.replayHolders(req.broadcast, from)
			// The asker is about to hold the replay too.
			n.noteHolder(req.broadcast, from)
		}
	case replayAskView:
		if n.signedManifest(context.Background(), req.broadcast) != nil {
			n.noteHolder(req.broadcast, from)
			resp.views = n.countReplayView(req.broadcast, from)
		}
	}
	_ = writeFrame(s, resp.marshal())
}

// askReplay sends one request to a peer and reads the answer.
func (n *Node) askReplay(ctx context.Context, p peer.AddrInfo, req replayRequest) (replayResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(p.ID, p.Addrs, 10*time.Minute)
	}
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "replay"), p.ID, ReplayProtocol)
	if err != nil {
		return replayResponse{}, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeFrame(s, req.marshal()); err != nil {
		_ = s.Reset()
		return replayResponse{}, err
	}
	_ = s.CloseWrite()
	b, err := readReplayFrame(bufio.NewReader(s), maxReplayResponse)
	if err != nil {
		_ = s.Reset()
		return replayResponse{}, err
	}
	var resp replayResponse
	return resp, resp.unmarshal(b)
}

// fetchManifest asks one peer for a replay's manifest and checks it.
func (n *Node) fetchManifest(ctx context.Context, p peer.AddrInfo, id string) (*replay.Manifest, []byte, []peer.AddrInfo, error) {
	_, key, err := BroadcasterOf(id)
	if err != nil {
		return nil, nil, nil, err
	}
	resp, err := n.askReplay(ctx, p, replayRequest{kind: replayAskManifest, broadcast: id})
	if err != nil {
		return nil, nil, nil, err
	}
	if len(resp.manifest) == 0 {
		return nil, nil, resp.holders, errNoManifest
	}
	m, err := replay.DecodeManifest(resp.manifest, id, key)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, resp.manifest, resp.holders, nil
}

var errNoManifest = errors.New("node: the peer has no manifest of the replay")

// replayHolders returns peers that hold (or are fetching) a replay, as
// far as this node knows, but not except.
func (n *Node) replayHolders(id string, except peer.ID) []peer.AddrInfo {
	seen := map[peer.ID]bool{except: true, n.host.ID(): true}
	var out []peer.AddrInfo
	add := func(p peer.ID) {
		if seen[p] || len(out) >= maxHolders {
			return
		}
		seen[p] = true
		if addrs := n.host.Peerstore().Addrs(p); len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: p, Addrs: reachableFirst(addrs)})
		}
	}
	if b := n.lookup(id); b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if st, err := b.Status(ctx); err == nil {
			if st.Parent != "" {
				add(st.Parent)
			}
			for _, c := range st.Children {
				add(c)
			}
		}
		cancel()
		for _, p := range b.link.Peers {
			add(p.ID)
		}
	}
	n.mu.Lock()
	hs := slices.Clone(n.holders[id])
	n.mu.Unlock()
	for _, p := range slices.Backward(hs) { // the latest first
		add(p)
	}
	return out
}

// noteHolder remembers a peer that holds (or is fetching) a replay.
func (n *Node) noteHolder(id string, p peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.holders == nil {
		n.holders = map[string][]peer.ID{}
	}
	hs := n.holders[id]
	if i := slices.Index(hs, p); i >= 0 {
		hs = slices.Delete(hs, i, i+1)
	}
	hs = append(hs, p)
	if len(hs) > 4*maxHolders {
		hs = hs[len(hs)-4*maxHolders:]
	}
	n.holders[id] = hs
}

// maxReplayViewers bounds the distinct replay viewers remembered per
// broadcast (beyond it, the count stops growing).
const maxReplayViewers = 1 << 20

// countReplayView records a replay view and returns the count.
func (n *Node) countReplayView(id string, p peer.ID) uint64 {
	n.mu.Lock()
	if n.views == nil {
		n.views = map[string]map[peer.ID]struct{}{}
	}
	v := n.views[id]
	if v == nil {
		v = map[peer.ID]struct{}{}
		n.views[id] = v
	}
	_, had := v[p]
	if !had && len(v) < maxReplayViewers {
		v[p] = struct{}{}
	}
	count := uint64(len(v))
	n.mu.Unlock()
	if !had && n.community != nil {
		n.community.ReplayViewed(id)
	}
	return count
}

// ReplayViews returns how many distinct peers this node has seen watch a
// broadcast's replay (on the broadcaster: every replay viewer that reached
// it).
func (n *Node) ReplayViews(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.views[id])
}
