package swarm

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/proto/replaypb"
	"github.com/peerscope/peerscope/replay"
)

// ProtocolID is the request/response protocol of replays (proto/replay.proto's
// Request and Response): the asker writes one Request frame, the answerer
// one Response frame and closes. Version 1.1.0 named blocks by the hash of
// the chunk's one encoding (chunk.Chunk.Bytes); 1.0.0 nodes hashed another,
// so the two refuse each other at protocol negotiation rather than list
// blocks the other cannot find.
//
// Every node that holds a replay's manifest answers, so a replay needs
// nothing from its broadcaster once the broadcast is over. 1.2.0 counts a
// view only when the viewer proves it fetched the whole replay (a hash
// over every chunk and its own peer ID, views.go), as its account's when it
// sends a believed attestation; 1.1.0's view request (from a node that
// proves nothing) is answered with the counts and counts nothing. A node
// serves both (Protocols), and asks for manifests in 1.2.0 first; a view
// goes only to peers that speak 1.2.0.
const ProtocolID protocol.ID = "/peerscope/replay/1.2.0"

// ProtocolV11 is the version before views were proven: still served, so
// that 1.1.0 nodes get manifests and holders.
const ProtocolV11 protocol.ID = "/peerscope/replay/1.1.0"

// Protocols are the versions a Swarm serves, newest first: register Serve
// for each.
var Protocols = []protocol.ID{ProtocolID, ProtocolV11}

// What a Request asks.
const (
	askManifest = 1 // the manifest and holders
	askView     = 2 // the view counts (1.1.0 asked this to count a view; it no longer does)
	// A view (1.2.0): three requests on one stream (views.go).
	askViewNonce = 3 // a view: give me a nonce
	askViewRoot  = 4 // the tags' Merkle root: challenge me
	askViewOpen  = 5 // the challenged tags, opened
)

const (
	maxRequest    = 32 << 10 // an attestation (2 KiB at most), or a view's openings
	maxRequestV11 = 1024
	maxResponse   = replay.MaxManifestSize + 64<<10
	// maxHolders is how many holders an answer names.
	maxHolders = 16
	// maxHolderAddrs is how many holder addresses a reader takes from an
	// answer; it ignores the rest.
	maxHolderAddrs = link.MaxPeers * 4
	// maxChallenges bounds the indices a view's answerer challenges (it
	// picks viewChallenges), maxPath an opening's path (2^32 chunks).
	maxChallenges = 64
	maxPath       = 32
	// Timeout bounds one exchange, either side.
	Timeout = 10 * time.Second
)

// request is a decoded Request.
type request struct {
	kind        uint32
	broadcast   string
	attestation []byte    // askViewNonce, optional
	root        []byte    // askViewRoot
	openings    []opening // askViewOpen
}

// opening is one challenged tag with its Merkle path, leaf to root.
type opening struct {
	index uint32
	tag   []byte
	path  [][]byte
}

func (r request) encode() []byte {
	pb := &replaypb.Request{Kind: r.kind, Broadcast: r.broadcast, Attestation: r.attestation, Root: r.root}
	for _, o := range r.openings {
		pb.Opening = append(pb.Opening, &replaypb.Opening{Index: o.index, Tag: o.tag, Path: o.path})
	}
	b, _ := proto.Marshal(pb)
	return b
}

func decodeRequest(b []byte) (request, error) {
	var pb replaypb.Request
	err := pbwire.Unmarshal(b, &pb)
	switch {
	case err != nil:
	case pb.Kind < askManifest || pb.Kind > askViewOpen || pb.Broadcast == "":
		err = errors.New("unknown kind or no broadcast")
	case pb.Kind == askViewRoot && len(pb.Root) != sha256.Size:
		err = fmt.Errorf("a root of %d bytes", len(pb.Root))
	case len(pb.Opening) > maxChallenges:
		err = fmt.Errorf("%d openings", len(pb.Opening))
	}
	if err != nil {
		return request{}, fmt.Errorf("%w: request: %w", ErrMalformed, err)
	}
	req := request{kind: pb.Kind, broadcast: pb.Broadcast, attestation: pb.Attestation, root: pb.Root}
	for _, o := range pb.Opening {
		if len(o.Tag) != sha256.Size || len(o.Path) > maxPath {
			return request{}, fmt.Errorf("%w: request: an opening of %d bytes, %d steps", ErrMalformed, len(o.Tag), len(o.Path))
		}
		for _, p := range o.Path {
			if len(p) != sha256.Size {
				return request{}, fmt.Errorf("%w: request: a path step of %d bytes", ErrMalformed, len(p))
			}
		}
		req.openings = append(req.openings, opening{index: o.Index, tag: o.Tag, path: o.Path})
	}
	return req, nil
}

// response is a decoded Response.
type response struct {
	manifest   []byte
	holders    []peer.AddrInfo
	views      uint64   // proven views counted
	identified uint64   // of which identified
	nonce      []byte   // a view's nonce
	challenge  []uint32 // the indices a view is to open
}

func (r *response) encode() []byte {
	pb := &replaypb.Response{Manifest: r.manifest, Views: r.views, IdentifiedViews: r.identified, Nonce: r.nonce, Challenge: r.challenge}
	for _, h := range r.holders {
		addrs, err := peer.AddrInfoToP2pAddrs(&h)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pb.Holders = append(pb.Holders, a.String())
		}
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
	return b
}

func decodeResponse(b []byte) (response, error) {
	b, err := firstHolders(b, maxHolderAddrs)
	if err != nil {
		return response{}, fmt.Errorf("%w: response: %w", ErrMalformed, err)
	}
	var pb replaypb.Response
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return response{}, fmt.Errorf("%w: response: %w", ErrMalformed, err)
	}
	if len(pb.Nonce) != 0 && len(pb.Nonce) != viewNonceSize || len(pb.Challenge) > maxChallenges {
		return response{}, fmt.Errorf("%w: response: a nonce of %d bytes, %d challenges", ErrMalformed, len(pb.Nonce), len(pb.Challenge))
	}
	addrs := make([]ma.Multiaddr, 0, len(pb.Holders))
	for _, s := range pb.Holders {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return response{}, fmt.Errorf("%w: holder: %w", ErrMalformed, err)
		}
		addrs = append(addrs, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return response{}, fmt.Errorf("%w: holders: %w", ErrMalformed, err)
	}
	return response{manifest: pb.Manifest, holders: infos, views: pb.Views, identified: min(pb.IdentifiedViews, pb.Views),
		nonce: pb.Nonce, challenge: pb.Challenge}, nil
}

// firstHolders returns b without the holder fields after the first max, so
// that an answer with millions of them costs no more than one with max
// (the generated code would make a string of each).
func firstHolders(b []byte, max int) ([]byte, error) {
	var out []byte // nil while b is kept whole
	seen := 0
	for rest := b; len(rest) > 0; {
		num, _, n := protowire.ConsumeField(rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		field := rest[:n]
		rest = rest[n:]
		if num == 2 {
			if seen++; seen == max+1 {
				out = append([]byte(nil), b[:len(b)-len(rest)-n]...)
			}
			if seen > max {
				continue
			}
		}
		if out != nil {
			out = append(out, field...)
		}
	}
	if out == nil {
		return b, nil
	}
	return out, nil
}

// Serve answers one replay request on st (either of Protocols) and closes
// it; a malformed request resets it, and so does a peer past its share of
// the host's replay streams (p2plimit). A view (1.2.0) goes on for two
// more exchanges (serveView).
func (s *Swarm) Serve(st network.Stream) {
	if p2plimit.Accept(st, p2plimit.ServiceReplay) != nil {
		return
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(Timeout))
	limit := uint64(maxRequest)
	v11 := st.Protocol() == ProtocolV11
	if v11 {
		limit = maxRequestV11
	}
	// A view's three requests come on one stream.
	br := bufio.NewReader(io.LimitReader(st, 3*(int64(limit)+16)))
	req, err := readRequest(br, limit)
	if err != nil || req.kind > askView && (v11 || req.kind != askViewNonce) {
		_ = st.Reset()
		return
	}
	from := st.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	var resp response
	switch req.kind {
	case askManifest:
		resp.manifest = s.signedManifest(ctx, req.broadcast)
		if resp.manifest != nil {
			resp.holders = s.holders(ctx, req.broadcast, from)
		}
	case askView:
		if s.signedManifest(ctx, req.broadcast) != nil {
			resp.views, resp.identified = s.viewCounts(req.broadcast)
		}
	case askViewNonce:
		if err := s.serveView(ctx, st, br, req, from); err != nil {
			s.log.Debug("replay view not counted", "broadcast", req.broadcast, "viewer", from, "err", err)
			_ = st.Reset()
		}
		return
	}
	_ = pbwire.WriteFrame(st, resp.encode())
}

// readRequest reads and decodes one request frame.
func readRequest(br *bufio.Reader, limit uint64) (request, error) {
	b, err := pbwire.ReadFrame(br, limit)
	if err != nil {
		return request{}, err
	}
	return decodeRequest(b)
}

// ask sends one request to a peer, over the newest protocol version it
// speaks of protos (default: both), and reads the answer.
func (s *Swarm) ask(ctx context.Context, p peer.AddrInfo, req request, protos ...protocol.ID) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	st, err := s.open(ctx, p, protos...)
	if err != nil {
		return response{}, err
	}
	defer st.Close()
	if err := pbwire.WriteFrame(st, req.encode()); err != nil {
		_ = st.Reset()
		return response{}, err
	}
	_ = st.CloseWrite()
	resp, err := readResponse(bufio.NewReader(st))
	if err != nil {
		_ = st.Reset()
	}
	return resp, err
}

// open opens a replay stream to p, deadline set from ctx.
func (s *Swarm) open(ctx context.Context, p peer.AddrInfo, protos ...protocol.ID) (network.Stream, error) {
	h := s.cfg.Host
	if len(p.Addrs) > 0 {
		h.Peerstore().AddAddrs(p.ID, p.Addrs, 10*time.Minute)
	}
	if len(protos) == 0 {
		protos = Protocols
	}
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "replay"), p.ID, protos...)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	return st, nil
}

// readResponse reads and decodes one response frame.
func readResponse(br *bufio.Reader) (response, error) {
	b, err := pbwire.ReadFrame(br, maxResponse)
	if err != nil {
		return response{}, err
	}
	return decodeResponse(b)
}

// fetchManifest asks one peer for a replay's manifest and checks it; it
// returns the holders the peer named too (even when it had no manifest).
func (s *Swarm) fetchManifest(ctx context.Context, p peer.AddrInfo, id string) (*replay.Manifest, []byte, []peer.AddrInfo, error) {
	_, key, err := link.BroadcasterOf(id)
	if err != nil {
		return nil, nil, nil, err
	}
	resp, err := s.ask(ctx, p, request{kind: askManifest, broadcast: id})
	if err != nil {
		return nil, nil, nil, err
	}
	if len(resp.manifest) == 0 {
		return nil, nil, resp.holders, ErrNoManifest
	}
	m, err := replay.DecodeManifest(resp.manifest, id, key)
	if err != nil {
		return nil, nil, nil, err
	}
	s.anchor(m)
	return m, resp.manifest, resp.holders, nil
}
