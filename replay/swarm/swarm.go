package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// Blocks is how chunks are fetched from peers by CID: bitswap.
type Blocks interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
	GetBlocks(ctx context.Context, cs []cid.Cid) (<-chan blocks.Block, error)
}

// Config is what a Swarm works with. Host and Blocks are required.
type Config struct {
	Host   host.Host
	Blocks Blocks
	// Store keeps replays (the manifests, the chunks fetched); nil: this
	// node keeps none, and what it plays stays in memory.
	Store *replay.Store
	// TTL is how long a replay lives after its broadcast ended; default
	// replay.DefaultTTL.
	TTL time.Duration
	// Clock judges expiry and paces the retries; default the system's.
	Clock clock.Clock
	// Neighbours names the peers likely to hold a broadcast this node takes
	// part in (its parent and children in the tree, the peers it joined
	// through): the first holders an answer names. Nil: none.
	Neighbours func(ctx context.Context, broadcast string) []peer.ID
	// OnView hears each new replay view counted of a broadcast (a viewer
	// that proved it fetched the whole replay); it must not block. Nil:
	// nobody listens.
	OnView func(broadcast string)
	// Identify says whose account an attestation names, when it is one
	// this node believes and was issued to p (the viewer's peer ID): a
	// replay view carrying it counts as that account's. Nil: every view is
	// anonymous.
	Identify func(attestation []byte, p peer.ID) (account string, ok bool)
	// Attestation is this node's own attestation, sent with its replay
	// views (nil: anonymous). Nil func: none.
	Attestation func() []byte
	// Page makes the HTTP page that plays a replay (Replay.Page); nil: none.
	Page func(*Replay) http.Handler
	// Open, when set, gives the media a replay plays from a chunk as
	// stored: a private broadcast's payload opened with its epoch's keys
	// (the init segment inline in the manifest comes with Epoch 0: Open
	// finds its epoch). Nil: the payload as it is. The blocks stay as
	// they came; only the player sees plaintext.
	Open func(c *chunk.Chunk) ([]byte, error)
	// Logger; default: discard.
	Logger *slog.Logger
}

// Swarm is this node's side of the replays its peers hold: it answers
// ProtocolID (Serve), remembers who holds what and who watched, keeps the
// manifests it learns (Keep, Await), and opens replays to play (Open).
// Its methods are safe for concurrent use.
type Swarm struct {
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	ctx    context.Context // ends at Close: the replays' fetching
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	known   map[string]known     // manifests of broadcasts this node took part in
	replays map[string]*Replay   // replays this node plays
	holding map[string][]peer.ID // peers known to hold a replay, the latest last
	views   map[string]*viewers  // replay views counted, per broadcast (views.go)
	proving chan struct{}        // cap 1: one view proof checked at a time
}

type known struct {
	m      *replay.Manifest
	signed []byte
}

// New returns a Swarm; Close stops what it fetches.
func New(cfg Config) (*Swarm, error) {
	if cfg.Host == nil || cfg.Blocks == nil {
		return nil, errors.New("swarm: a Host and Blocks are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = replay.DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Swarm{cfg: cfg, log: cfg.Logger, clock: clock.OrSystem(cfg.Clock),
		known: map[string]known{}, replays: map[string]*Replay{},
		holding: map[string][]peer.ID{}, views: map[string]*viewers{}, proving: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops every replay's fetching. Safe to call more than once.
func (s *Swarm) Close() error {
	s.mu.Lock()
	s.closed = true
	rs := make([]*Replay, 0, len(s.replays))
	for _, r := range s.replays {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		_ = r.Close()
	}
	s.cancel()
	return nil
}

// Expired reports whether a replay's time is over: TTL after its end, as
// anchored when the manifest came (anchor).
func (s *Swarm) Expired(m *replay.Manifest) bool {
	return !s.clock.Now().Before(m.Ended.Add(s.cfg.TTL))
}

// anchor puts a manifest that just came (fetched, read from the store,
// signed here) on this node's clock: its end is never later than now, nor
// than the end the store recorded first. A broadcaster whose clock runs
// ten years ahead cannot keep its replay served for ten years. The signed
// bytes are untouched; only this node's copy of the end moves.
func (s *Swarm) anchor(m *replay.Manifest) {
	if now := s.clock.Now(); m.Ended.After(now) {
		m.Ended = now
	}
	if st := s.cfg.Store; st != nil {
		if end, ok := st.End(m.Broadcast); ok && end.Before(m.Ended) {
			m.Ended = end
		}
	}
}

// Keep keeps a verified manifest of a broadcast this node took part in (the
// first one wins): in memory, answered to peers until Forget, and in the
// store, which then counts the replay's time from its end. It reports
// whether this one was kept.
func (s *Swarm) Keep(ctx context.Context, m *replay.Manifest, signed []byte) bool {
	s.anchor(m)
	s.mu.Lock()
	if _, ok := s.known[m.Broadcast]; ok {
		s.mu.Unlock()
		return false
	}
	s.known[m.Broadcast] = known{m, signed}
	s.mu.Unlock()
	if st := s.cfg.Store; st != nil {
		if err := st.PutManifest(ctx, m, signed); err != nil {
			s.log.Warn("replay: manifest not stored", "broadcast", m.Broadcast, "err", err)
		}
	}
	return true
}

// Forget drops the in-memory manifest of a broadcast this node no longer
// takes part in (the store keeps its copy).
func (s *Swarm) Forget(id string) {
	s.mu.Lock()
	delete(s.known, id)
	s.mu.Unlock()
}

// Known returns the manifest Keep kept for a broadcast, and its signed
// bytes (expired or not: see Expired).
func (s *Swarm) Known(id string) (*replay.Manifest, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.known[id]
	return k.m, k.signed
}

// signedManifest returns the signed manifest of a replay this node holds
// (nil when it holds none, or it expired).
func (s *Swarm) signedManifest(ctx context.Context, id string) []byte {
	if m, signed := s.Known(id); m != nil && !s.Expired(m) {
		return signed
	}
	if r := s.Lookup(id); r != nil && !s.Expired(r.m) {
		return r.signed
	}
	if s.cfg.Store == nil {
		return nil
	}
	signed, err := s.cfg.Store.Manifest(ctx, id)
	if err != nil {
		return nil
	}
	return signed
}

// Holds reports whether this node holds an unexpired manifest of a replay.
func (s *Swarm) Holds(ctx context.Context, id string) bool { return s.signedManifest(ctx, id) != nil }

// holders returns peers that hold a replay, as far as this node knows,
// but not except: its neighbours in the broadcast first, then the latest
// that proved it (noteHolder).
func (s *Swarm) holders(ctx context.Context, id string, except peer.ID) []peer.AddrInfo {
	self := s.cfg.Host.ID()
	seen := map[peer.ID]bool{except: true, self: true}
	var out []peer.AddrInfo
	add := func(p peer.ID) {
		if seen[p] || len(out) >= maxHolders {
			return
		}
		seen[p] = true
		if addrs := s.cfg.Host.Peerstore().Addrs(p); len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: p, Addrs: link.ReachableFirst(addrs)})
		}
	}
	if s.cfg.Neighbours != nil {
		for _, p := range s.cfg.Neighbours(ctx, id) {
			add(p)
		}
	}
	s.mu.Lock()
	hs := slices.Clone(s.holding[id])
	s.mu.Unlock()
	for _, p := range slices.Backward(hs) { // the latest first
		add(p)
	}
	return out
}

// maxHeld bounds the broadcasts whose holders are remembered.
const maxHeld = 1024

// noteHolder remembers a peer that holds a replay: one that answered with
// its verified manifest, or proved it holds every chunk (a view). A peer
// that only asks, or that another names, is not one: any peer could, and
// the holders an answer names are what leads a replay viewer to its
// chunks. At most 4 × maxHolders a replay, the latest kept, for at most
// maxHeld replays.
func (s *Swarm) noteHolder(id string, p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, ok := s.holding[id]
	if !ok && len(s.holding) >= maxHeld {
		for k := range s.holding { // any one: they are all hints
			delete(s.holding, k)
			break
		}
	}
	if i := slices.Index(hs, p); i >= 0 {
		hs = slices.Delete(hs, i, i+1)
	}
	hs = append(hs, p)
	if len(hs) > 4*maxHolders {
		hs = hs[len(hs)-4*maxHolders:]
	}
	s.holding[id] = hs
}

// Watched is a broadcast this node watched, as Await needs it.
type Watched struct {
	Broadcast string
	// Targets names the peers to ask for the manifest, best first (the
	// broadcaster, this node's parent, the link's peers); asked afresh each
	// round.
	Targets func(ctx context.Context) []peer.ID
	// Link is the peers this node joined through.
	Link []peer.AddrInfo
	// Complete fetches, once the manifest is here, the chunks this node
	// lacks (those from before it joined, or lost to a full queue), while
	// the broadcast's swarm is still together: a replay then survives on
	// the viewers when the broadcaster and the early joiners are gone. A
	// node that relays sets it; light nodes keep only what they received.
	// It is not a replay view. Without a Store it does nothing.
	Complete bool
}

// Await, on a viewer of a broadcast that has ended, fetches its manifest
// (the broadcaster signs it as it ends: retried for two minutes, with
// backoff) and keeps it; then completes this node's copy if w says so. It
// returns when that is done, ctx ends, or it gives up.
func (s *Swarm) Await(ctx context.Context, w Watched) {
	wait := 200 * time.Millisecond
	deadline := s.clock.Now().Add(2 * time.Minute)
	for s.clock.Now().Before(deadline) {
		if m, _ := s.Known(w.Broadcast); m != nil {
			return
		}
		if from, ok := s.fetchKnown(ctx, w); ok {
			s.complete(ctx, w, from)
			return
		}
		if s.clock.Sleep(ctx, wait) != nil {
			return
		}
		wait = min(2*wait, 5*time.Second)
	}
	s.log.Info("replay: no manifest found", "broadcast", w.Broadcast)
}

// fetchKnown asks w's targets for the manifest once; it reports who gave it.
func (s *Swarm) fetchKnown(ctx context.Context, w Watched) (peer.ID, bool) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	for _, p := range w.Targets(ctx) {
		if p == s.cfg.Host.ID() {
			continue
		}
		m, signed, holders, err := s.fetchManifest(ctx, peer.AddrInfo{ID: p}, w.Broadcast)
		if err != nil {
			continue
		}
		// The peers it names are where to look, not proven holders.
		for _, h := range holders {
			s.cfg.Host.Peerstore().AddAddrs(h.ID, h.Addrs, time.Hour)
		}
		s.noteHolder(w.Broadcast, p)
		s.Keep(ctx, m, signed)
		s.log.Info("replay manifest fetched", "broadcast", w.Broadcast, "from", p, "chunks", len(m.Chunks))
		return p, true
	}
	return "", false
}

// complete fetches the chunks of a watched broadcast this node lacks, from
// the peer that gave the manifest and the link's peers.
func (s *Swarm) complete(ctx context.Context, w Watched, from peer.ID) {
	st := s.cfg.Store
	m, _ := s.Known(w.Broadcast)
	if !w.Complete || st == nil || m == nil {
		return
	}
	missing := 0
	for _, e := range m.Chunks {
		if !st.Has(e.CID) {
			missing++
		}
	}
	if missing == 0 {
		return
	}
	l := link.Link{Broadcast: w.Broadcast, Peers: []peer.AddrInfo{{ID: from}}}
	for _, p := range w.Link {
		if p.ID != from {
			l.Peers = append(l.Peers, p)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if _, err := s.Open(ctx, l, false); err != nil {
		s.log.Info("replay: the missing chunks not fetched", "broadcast", w.Broadcast, "missing", missing, "err", err)
		return
	}
	s.log.Info("replay: fetching the chunks this node missed", "broadcast", w.Broadcast, "missing", missing)
}

// findManifest returns a replay's manifest: this node's own, or the first
// that a peer of the link (then a holder they name) gives.
func (s *Swarm) findManifest(ctx context.Context, l link.Link) (*replay.Manifest, []byte, []peer.AddrInfo, error) {
	id := l.Broadcast
	_, key, _ := link.BroadcasterOf(id)
	if signed := s.signedManifest(ctx, id); signed != nil {
		m, err := replay.DecodeManifest(signed, id, key)
		if err == nil {
			s.anchor(m)
			return m, signed, nil, nil
		}
	}
	var errs []error
	var holders []peer.AddrInfo
	answered := false // some peer answered (without the manifest)
	asked := map[peer.ID]bool{s.cfg.Host.ID(): true}
	queue := slices.Clone(l.Peers)
	for len(queue) > 0 && len(asked) <= 2*maxHolders {
		p := queue[0]
		queue = queue[1:]
		if asked[p.ID] {
			continue
		}
		asked[p.ID] = true
		m, signed, hs, err := s.fetchManifest(ctx, p, id)
		holders = append(holders, hs...)
		if err == nil {
			s.noteHolder(id, p.ID)
			return m, signed, holders, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
		answered = answered || errors.Is(err, ErrNoManifest)
		queue = append(queue, hs...)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: no peer to ask for the replay", link.ErrMalformed)
	}
	if !answered {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
	}
	return nil, nil, nil, fmt.Errorf("%w: no peer gave the replay's manifest: %w", replay.ErrExpired, errors.Join(errs...))
}
