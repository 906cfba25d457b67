package swarm

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// A replay view is counted only for a viewer that fetched the whole
// replay, and proves it: a hash over every chunk, bound to its own peer ID
// (viewProof), which only a peer holding every chunk can compute. Peer IDs
// are free, so a view that cost nothing would let one client make any
// count it liked; a proven one costs what a real view costs, the whole
// replay fetched (or hashed) for each peer ID. A view carrying an
// attestation this node believes (Config.Identify) counts as its account's
// — once per account, whatever the peer — and is reported apart from the
// anonymous ones: those are the figure a sybil can still grow, at a price.
//
//	viewer: the replay's every chunk here (Complete) ─► viewProof(own ID) ─► askProvenView
//	        to the broadcaster and the holders it knows (1.2.0 only)
//	holder: manifest held ─► every chunk held ─► viewProof(asker's ID) == proof?
//	        ─► counted (by account when identified) ─► the asker is a holder too

// viewDomain separates view proofs from every other hash of the chunks.
const viewDomain = "peerscope/replay-view/1\x00"

// maxViewers bounds the views remembered per broadcast (beyond it, the
// counts stop growing).
const maxViewers = 1 << 20

// maxViewTargets bounds the peers a viewer sends its view to.
const maxViewTargets = 16

// viewers are the views counted of one broadcast.
type viewers struct {
	peers    map[peer.ID]string  // viewer → its account ("" anonymous)
	accounts map[string]struct{} // the accounts with a view
	anon     int                 // peers counted with no account
}

// viewProof hashes what a viewer proves it holds (proto/replay.proto,
// Request.proof): the domain, the broadcast, the viewer's peer ID, then
// every chunk of the manifest in order, as block reads them.
func viewProof(ctx context.Context, m *replay.Manifest, viewer peer.ID, block func(context.Context, cid.Cid) ([]byte, error)) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte(viewDomain))
	writeField(h, []byte(m.Broadcast))
	writeField(h, []byte(viewer))
	for _, e := range m.Chunks {
		b, err := block(ctx, e.CID)
		if err != nil {
			return nil, fmt.Errorf("swarm: view proof: chunk %d: %w", e.Seq, err)
		}
		h.Write(b)
	}
	return h.Sum(nil), nil
}

func writeField(h hash.Hash, b []byte) {
	h.Write(binary.AppendUvarint(nil, uint64(len(b))))
	h.Write(b)
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

// provenView counts the view of req's asker if its proof holds: this node
// must hold every chunk to check it (the broadcaster does; so does any
// viewer that completed its copy). Proofs are checked one at a time, since
// each hashes the whole replay; one that cannot be checked within the
// request's time counts nothing (the viewer sends its view to others too).
func (s *Swarm) provenView(ctx context.Context, req request, from peer.ID) {
	s.mu.Lock()
	_, counted := s.views[req.broadcast].peerOK(from)
	s.mu.Unlock()
	account, identified := "", false
	if len(req.attestation) > 0 && s.cfg.Identify != nil {
		account, identified = s.cfg.Identify(req.attestation, from)
	}
	if counted && !identified {
		return // nothing new to learn: the proof would only cost a hash of the replay
	}
	m := s.manifest(ctx, req.broadcast)
	if m == nil {
		return
	}
	select {
	case s.proving <- struct{}{}:
		defer func() { <-s.proving }()
	case <-ctx.Done():
		return
	}
	want, err := viewProof(ctx, m, from, s.block(req.broadcast))
	if err != nil {
		s.log.Debug("replay view not checked", "broadcast", req.broadcast, "viewer", from, "err", err)
		return
	}
	if subtle.ConstantTimeCompare(want, req.proof) != 1 {
		s.log.Info("replay view refused: the proof does not match", "broadcast", req.broadcast, "viewer", from)
		return
	}
	s.noteHolder(req.broadcast, from) // it holds every chunk
	if !identified {
		account = ""
	}
	s.countView(req.broadcast, from, account)
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
