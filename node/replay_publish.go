package node

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// replayState is a broadcast's replay as this node knows it: on the
// broadcaster, the manifest being built as chunks are made; everywhere,
// the signed manifest once there is one.
type replayState struct {
	mu      sync.Mutex
	entries []replay.Entry // the broadcaster's, in the order made
	m       *replay.Manifest
	signed  []byte
	ready   chan struct{} // closed when the manifest is known
}

func newReplayState() *replayState { return &replayState{ready: make(chan struct{})} }

// record notes a chunk the broadcaster made, for the manifest.
func (r *replayState) record(c *chunk.Chunk) {
	blk := c.Bytes()
	e := replay.Entry{CID: replay.CIDOf(blk), Seq: c.Seq, Wallclock: time.Unix(0, c.Wallclock),
		Duration: time.Duration(c.Duration), Flags: c.Flags, Size: len(blk)}
	if c.IsInit() {
		e.Init = c.Payload
	}
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
}

// set keeps a verified manifest (the first one wins).
func (r *replayState) set(m *replay.Manifest, signed []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m != nil {
		return false
	}
	r.m, r.signed = m, signed
	close(r.ready)
	return true
}

func (r *replayState) get() (*replay.Manifest, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m, r.signed
}

// sealReplay signs the manifest of an ended broadcast (on the broadcaster,
// from the chunks it made and the chat's comment log), keeps it in the
// store and lists the replay in the directory. It runs before the end is
// announced, so that a viewer that hears of the end can fetch it.
func (b *Broadcast) sealReplay() {
	r := b.replay
	r.mu.Lock()
	entries := r.entries
	r.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	a := b.Announcement()
	m := &replay.Manifest{Broadcast: b.id, Title: a.Title, Started: a.Started, Chunks: entries}
	for _, e := range entries {
		m.Ended = maxTime(m.Ended, e.Wallclock.Add(e.Duration))
	}
	if b.room != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if log, err := b.room.Log(ctx); err == nil {
			m.Comments = chat.MarshalLog(log)
		} else {
			b.log.Warn("replay: no comment log", "err", err)
		}
		cancel()
	}
	signed, err := m.Sign(b.n.key.Sign)
	if err != nil {
		b.log.Warn("replay: manifest not signed", "err", err)
		return
	}
	b.adoptManifest(m, signed)
	b.log.Info("replay manifest signed", "chunks", len(entries), "bytes", len(signed), "duration", m.Duration())
	b.n.listReplay(b, m)
}

// adoptManifest keeps a verified manifest: in memory (answered to peers)
// and in the store (which then counts the replay's 24 hours from its end).
func (b *Broadcast) adoptManifest(m *replay.Manifest, signed []byte) {
	if !b.replay.set(m, signed) {
		return
	}
	if st := b.n.replay; st != nil {
		if err := st.PutManifest(context.Background(), m, signed); err != nil {
			b.log.Warn("replay: manifest not stored", "err", err)
		}
	}
}

// awaitManifest, on a viewer, fetches the manifest once the broadcast has
// ended: from the broadcaster, its parent, then the link's peers, retrying
// for a while (the broadcaster signs it as it ends).
func (b *Broadcast) awaitManifest() {
	select {
	case <-b.done:
	case <-b.ctx.Done():
		return
	}
	wait := 200 * time.Millisecond
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m, _ := b.replay.get(); m != nil {
			return
		}
		if b.fetchManifestOnce() {
			return
		}
		select {
		case <-time.After(wait):
		case <-b.ctx.Done():
			return
		}
		wait = min(2*wait, 5*time.Second)
	}
	b.log.Info("replay: no manifest found")
}

func (b *Broadcast) fetchManifestOnce() bool {
	targets := []peer.ID{b.rootID}
	ctx, cancel := context.WithTimeout(b.ctx, replayTimeout)
	defer cancel()
	if st, err := b.Status(ctx); err == nil && st.Parent != "" {
		targets = append(targets, st.Parent)
	}
	for _, p := range b.link.Peers {
		targets = append(targets, p.ID)
	}
	for _, p := range targets {
		if p == b.n.host.ID() {
			continue
		}
		m, signed, holders, err := b.n.fetchManifest(ctx, peer.AddrInfo{ID: p}, b.id)
		if err != nil {
			continue
		}
		for _, h := range holders {
			b.n.host.Peerstore().AddAddrs(h.ID, h.Addrs, time.Hour)
			b.n.noteHolder(b.id, h.ID)
		}
		b.adoptManifest(m, signed)
		b.log.Info("replay manifest fetched", "from", shortPeer(p), "chunks", len(m.Chunks))
		b.completeReplay(p)
		return true
	}
	return false
}

// signedManifest returns the signed manifest of a replay this node holds
// (nil when it holds none, or it expired).
func (n *Node) signedManifest(ctx context.Context, id string) []byte {
	if b := n.lookup(id); b != nil {
		if m, signed := b.replay.get(); m != nil && !n.replayExpired(m) {
			return signed
		}
	}
	if r := n.lookupReplay(id); r != nil && !n.replayExpired(r.m) {
		return r.signed
	}
	if n.replay == nil {
		return nil
	}
	signed, err := n.replay.Manifest(ctx, id)
	if err != nil {
		return nil
	}
	return signed
}

// replayExpired reports whether a replay's 24 hours are over.
func (n *Node) replayExpired(m *replay.Manifest) bool {
	return !n.cfg.Now().Before(m.Ended.Add(n.replayTTL()))
}

func (n *Node) replayTTL() time.Duration {
	if n.cfg.ReplayTTL > 0 {
		return n.cfg.ReplayTTL
	}
	return replay.DefaultTTL
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// completeReplay, on a viewer that relays (a full node) and keeps replays,
// fetches the chunks of the replay it lacks — those from before it joined,
// or lost to a full queue — from the peers that have them, while the
// broadcast's swarm is still together: a replay then survives on the
// viewers even when the broadcaster and the early joiners are gone. Light
// nodes keep only what they received. It is not a replay view.
func (b *Broadcast) completeReplay(from peer.ID) {
	n := b.n
	if n.replay == nil || b.slots == 0 {
		return
	}
	m, _ := b.replay.get()
	missing := 0
	for _, e := range m.Chunks {
		if !n.replay.Has(e.CID) {
			missing++
		}
	}
	if missing == 0 {
		return
	}
	l := link.Link{Broadcast: b.id, Peers: []peer.AddrInfo{{ID: from}}}
	for _, p := range b.link.Peers {
		if p.ID != from {
			l.Peers = append(l.Peers, p)
		}
	}
	ctx, cancel := context.WithTimeout(b.ctx, replayTimeout)
	defer cancel()
	if _, err := n.startReplay(ctx, l, false); err != nil {
		b.log.Info("replay: the missing chunks not fetched", "missing", missing, "err", err)
		return
	}
	b.log.Info("replay: fetching the chunks this node missed", "missing", missing)
}
