package swarm

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// A replay view is counted only for a viewer that holds the whole replay,
// and proves it. Peer IDs are free, so a view that cost nothing would let
// one client make any count it liked; a proven one costs what a real view
// costs: the whole replay fetched, or held and hashed afresh, for each
// peer ID. A view carrying an attestation this node believes
// (Config.Identify) counts as its account's — once per account, whatever
// the peer — and is reported apart from the anonymous ones: those are the
// figure a sybil can still grow, at that price.
//
// The proof (proto/replay.proto) costs the viewer a hash of every chunk
// and the checker a few: the checker gives a fresh nonce; the viewer
// commits to a tag per chunk (SHA-256 over the nonce, its own peer ID, the
// index and the chunk) with their Merkle root; the checker picks
// viewChallenges indices at random; the viewer opens those tags with their
// paths, and the checker recomputes them from its own copy. The root comes
// before the challenge, so a viewer must have every tag — every chunk —
// by then; one missing a fraction f of them passes with (1-f)^16.
//
//	viewer:  every chunk here (Complete) ─► askViewNonce ─► tags, root ─► askViewRoot
//	         ─► open the challenged ─► askViewOpen     (the broadcaster and a few holders, 1.2.0)
//	checker: manifest and every challenged chunk held ─► nonce ─► challenge ─► tags match,
//	         paths lead to the root ─► counted (by account when identified) ─► a holder too

// viewDomain separates view tags from every other hash of the chunks.
const viewDomain = "peerscope/replay-view/1\x00"

// viewNonceSize is a view nonce's length; viewChallenges is how many tags
// a checker has opened.
const (
	viewNonceSize  = 32
	viewChallenges = 16
)

// maxViewers bounds the views remembered per broadcast (beyond it, the
// counts stop growing).
const maxViewers = 1 << 20

// maxViewTargets bounds the peers a viewer proves its view to: each asks
// for a hash of the whole replay.
const maxViewTargets = 4

// viewers are the views counted of one broadcast.
type viewers struct {
	peers    map[peer.ID]string  // viewer → its account ("" anonymous)
	accounts map[string]struct{} // the accounts with a view
	anon     int                 // peers counted with no account
}

// viewTag is the tag of chunk i (its block b) for a view by viewer under
// nonce.
func viewTag(nonce []byte, viewer peer.ID, i int, b []byte) []byte {
	h := sha256.New()
	h.Write([]byte(viewDomain))
	h.Write(nonce)
	h.Write(binary.AppendUvarint(nil, uint64(len(viewer))))
	h.Write([]byte(viewer))
	h.Write(binary.AppendUvarint(nil, uint64(i)))
	h.Write(b)
	return h.Sum(nil)
}

// viewTags computes every chunk's tag, in the manifest's order.
func viewTags(ctx context.Context, m *replay.Manifest, nonce []byte, viewer peer.ID, block func(context.Context, cid.Cid) ([]byte, error)) ([][]byte, error) {
	tags := make([][]byte, len(m.Chunks))
	for i, e := range m.Chunks {
		b, err := block(ctx, e.CID)
		if err != nil {
			return nil, fmt.Errorf("swarm: view: chunk %d: %w", e.Seq, err)
		}
		tags[i] = viewTag(nonce, viewer, i, b)
	}
	return tags, nil
}

// merkleNode is an inner node of the tags' tree.
func merkleNode(l, r []byte) []byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}

// merkleRoot returns the root over leaves and, for each index in open,
// its path (the siblings from the leaf up; a level where it has none is
// skipped: a lone last node is carried up as it is).
func merkleRoot(leaves [][]byte, open []uint32) ([]byte, [][][]byte) {
	paths := make([][][]byte, len(open))
	pos := make([]int, len(open))
	for k, i := range open {
		pos[k] = int(i)
	}
	level := leaves
	for len(level) > 1 {
		for k := range pos {
			if sib := pos[k] ^ 1; sib < len(level) {
				paths[k] = append(paths[k], level[sib])
			}
			pos[k] /= 2
		}
		up := make([][]byte, 0, (len(level)+1)/2)
		for j := 0; j < len(level); j += 2 {
			if j+1 < len(level) {
				up = append(up, merkleNode(level[j], level[j+1]))
			} else {
				up = append(up, level[j])
			}
		}
		level = up
	}
	if len(level) == 0 {
		return nil, paths
	}
	return level[0], paths
}

// merkleCheck reports whether leaf at index i of n leaves leads to root
// by path.
func merkleCheck(leaf []byte, i, n int, path [][]byte, root []byte) bool {
	h := leaf
	for width := n; width > 1; width = (width + 1) / 2 {
		if sib := i ^ 1; sib < width {
			if len(path) == 0 {
				return false
			}
			if i%2 == 0 {
				h = merkleNode(h, path[0])
			} else {
				h = merkleNode(path[0], h)
			}
			path = path[1:]
		}
		i /= 2
	}
	return len(path) == 0 && subtle.ConstantTimeCompare(h, root) == 1
}

// block returns a chunk of a replay held here: from an open replay (its
// memory, or the store), or the store.
func (s *Swarm) block(id string) func(context.Context, cid.Cid) ([]byte, error) {
	if r := s.Lookup(id); r != nil {
		return r.block
	}
	return func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if s.cfg.Store == nil {
			return nil, replay.ErrNotFound
		}
		return s.cfg.Store.Get(ctx, c)
	}
}

// manifest returns a replay's verified manifest as held here (nil: none,
// or expired).
func (s *Swarm) manifest(ctx context.Context, id string) *replay.Manifest {
	if m, _ := s.Known(id); m != nil && !s.Expired(m) {
		return m
	}
	if r := s.Lookup(id); r != nil && !s.Expired(r.m) {
		return r.m
	}
	signed := s.signedManifest(ctx, id)
	if signed == nil {
		return nil
	}
	_, key, err := link.BroadcasterOf(id)
	if err != nil {
		return nil
	}
	m, err := replay.DecodeManifest(signed, id, key)
	if err != nil {
		return nil
	}
	s.anchor(m)
	return m
}

// serveView checks a view (req is its first request, askViewNonce) on
// st, reading the next requests from br, and answers with the counts. A
// view that has nothing to prove (counted already, or this node cannot
// check it: no manifest, not every chunk) is answered with the counts at
// once.
func (s *Swarm) serveView(ctx context.Context, st network.Stream, br *bufio.Reader, req request, from peer.ID) error {
	id := req.broadcast
	account, identified := "", false
	if len(req.attestation) > 0 && s.cfg.Identify != nil {
		account, identified = s.cfg.Identify(req.attestation, from)
	}
	s.mu.Lock()
	prev, counted := s.views[id].peerOK(from)
	s.mu.Unlock()
	var resp response
	m := s.manifest(ctx, id)
	if m == nil || len(m.Chunks) == 0 || counted && (prev != "" || !identified) {
		resp.views, resp.identified = s.viewCounts(id)
		return pbwire.WriteFrame(st, resp.encode())
	}
	// Challenge first (the indices are ours to pick, and we must hold
	// their chunks), then the nonce.
	challenge := pickChallenge(len(m.Chunks), min(viewChallenges, len(m.Chunks)))
	block := s.block(id)
	want := make([][]byte, len(challenge))
	for k, i := range challenge {
		b, err := block(ctx, m.Chunks[i].CID)
		if err != nil { // this node cannot check it: count nothing, say what it has
			resp.views, resp.identified = s.viewCounts(id)
			return pbwire.WriteFrame(st, resp.encode())
		}
		want[k] = b
	}
	nonce := make([]byte, viewNonceSize)
	_, _ = crand.Read(nonce)
	if err := pbwire.WriteFrame(st, (&response{nonce: nonce}).encode()); err != nil {
		return err
	}
	// The viewer now hashes the whole replay (a second or so a gigabyte).
	_ = st.SetDeadline(time.Now().Add(3 * Timeout))
	rootReq, err := readRequest(br, maxRequest)
	if err != nil || rootReq.kind != askViewRoot || rootReq.broadcast != id {
		return fmt.Errorf("%w: no root (%v)", ErrMalformed, err)
	}
	if err := pbwire.WriteFrame(st, (&response{challenge: challenge}).encode()); err != nil {
		return err
	}
	open, err := readRequest(br, maxRequest)
	if err != nil || open.kind != askViewOpen || open.broadcast != id || len(open.openings) != len(challenge) {
		return fmt.Errorf("%w: no openings (%v)", ErrMalformed, err)
	}
	for k, o := range open.openings {
		i := challenge[k]
		if o.index != i || subtle.ConstantTimeCompare(o.tag, viewTag(nonce, from, int(i), want[k])) != 1 ||
			!merkleCheck(o.tag, int(i), len(m.Chunks), o.path, rootReq.root) {
			s.log.Info("replay view refused: the proof does not hold", "broadcast", id, "viewer", from, "index", i)
			resp.views, resp.identified = s.viewCounts(id)
			return pbwire.WriteFrame(st, resp.encode())
		}
	}
	s.noteHolder(id, from) // it holds every chunk
	if !identified {
		account = ""
	}
	s.countView(id, from, account)
	resp.views, resp.identified = s.viewCounts(id)
	return pbwire.WriteFrame(st, resp.encode())
}

// pickChallenge returns k distinct indices below n, at random (unguessable:
// a viewer that knew them could commit to those tags alone).
func pickChallenge(n, k int) []uint32 {
	picked := make(map[uint32]bool, k)
	out := make([]uint32, 0, k)
	for len(out) < k {
		if i := uint32(rand.IntN(n)); !picked[i] {
			picked[i] = true
			out = append(out, i)
		}
	}
	return out
}

// sendView proves a view of r (every chunk here) to p and returns its
// answer: the counts it holds.
func (s *Swarm) sendView(ctx context.Context, p peer.AddrInfo, r *Replay, attestation []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*Timeout)
	defer cancel()
	st, err := s.open(ctx, p, ProtocolID)
	if err != nil {
		return response{}, err
	}
	defer st.Close()
	br := bufio.NewReader(st)
	exchange := func(req request) (response, error) {
		if err := pbwire.WriteFrame(st, req.encode()); err != nil {
			return response{}, err
		}
		return readResponse(br)
	}
	resp, err := exchange(request{kind: askViewNonce, broadcast: r.id, attestation: attestation})
	if err != nil || resp.nonce == nil {
		return resp, err // counted already, or it cannot check: its counts
	}
	tags, err := viewTags(ctx, r.m, resp.nonce, s.cfg.Host.ID(), r.block)
	if err != nil {
		_ = st.Reset()
		return response{}, err
	}
	root, _ := merkleRoot(tags, nil)
	resp, err = exchange(request{kind: askViewRoot, broadcast: r.id, root: root})
	if err != nil {
		return response{}, err
	}
	for _, i := range resp.challenge {
		if int(i) >= len(tags) {
			_ = st.Reset()
			return response{}, fmt.Errorf("%w: a challenge of chunk %d of %d", ErrMalformed, i, len(tags))
		}
	}
	_, paths := merkleRoot(tags, resp.challenge)
	req := request{kind: askViewOpen, broadcast: r.id}
	for k, i := range resp.challenge {
		req.openings = append(req.openings, opening{index: i, tag: tags[i], path: paths[k]})
	}
	return exchange(req)
}

// peerOK reports the account a peer's view was counted under, and whether
// it was counted (v may be nil).
func (v *viewers) peerOK(p peer.ID) (string, bool) {
	if v == nil {
		return "", false
	}
	a, ok := v.peers[p]
	return a, ok
}

// countView counts a proven view of a broadcast by p, as account's when
// it is not "" (a peer counted anonymously that later identifies moves to
// its account).
func (s *Swarm) countView(id string, p peer.ID, account string) {
	s.mu.Lock()
	v := s.views[id]
	if v == nil {
		v = &viewers{peers: map[peer.ID]string{}, accounts: map[string]struct{}{}}
		s.views[id] = v
	}
	prev, had := v.peers[p]
	fresh := false
	switch {
	case had && (prev != "" || account == ""):
		// counted already, as well as it can be
	case len(v.peers) >= maxViewers && !had:
	default:
		if had {
			v.anon-- // it identified itself since
		}
		v.peers[p] = account
		if account == "" {
			v.anon++
			fresh = true
		} else if _, ok := v.accounts[account]; !ok {
			v.accounts[account] = struct{}{}
			fresh = !had
		}
	}
	s.mu.Unlock()
	if fresh && s.cfg.OnView != nil {
		s.cfg.OnView(id)
	}
}

// viewCounts returns a broadcast's views counted here: all of them, and
// those of distinct accounts.
func (s *Swarm) viewCounts(id string) (views, identified uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[id]
	if v == nil {
		return 0, 0
	}
	return uint64(v.anon + len(v.accounts)), uint64(len(v.accounts))
}

// Views says how many replay views this node counted of a broadcast (on
// the broadcaster: every proven view that reached it).
type Views struct {
	Identified int // distinct attested accounts
	Anonymous  int // peers without a believed attestation
}

// Total is Identified + Anonymous.
func (v Views) Total() int { return v.Identified + v.Anonymous }

// Views returns the replay views counted here of a broadcast.
func (s *Swarm) Views(id string) Views {
	all, identified := s.viewCounts(id)
	return Views{Identified: int(identified), Anonymous: int(all - identified)}
}

// AllViews returns Views of every broadcast with a view.
func (s *Swarm) AllViews() map[string]Views {
	s.mu.Lock()
	ids := make([]string, 0, len(s.views))
	for id := range s.views {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	out := make(map[string]Views, len(ids))
	for _, id := range ids {
		out[id] = s.Views(id)
	}
	return out
}
