package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// setRoster remembers the newest roster of a private broadcast this node
// took part in, for as long as the node runs: its replay's blocks are
// served only to the devices it lists (replayFilter), after the broadcast
// is closed too.
func (t *privateTopics) setRoster(r *audience.Roster) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rosters == nil {
		t.rosters = map[string]*audience.Roster{}
	}
	if old := t.rosters[r.Broadcast]; old == nil || r.Version > old.Version {
		t.rosters[r.Broadcast] = r
	}
}

func (t *privateTopics) roster(id string) *audience.Roster {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rosters[id]
}

// privateKnown says whether broadcast id's chunks are sealed (ok false:
// not known yet), and remembers what a stored chunk showed.
func (t *privateTopics) privateKnown(id string) (private, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	private, ok = t.sealed[id]
	return private, ok
}

func (t *privateTopics) setSealed(id string, sealed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sealed == nil {
		t.sealed = map[string]bool{}
	}
	if len(t.sealed) > 4096 {
		clear(t.sealed)
	}
	t.sealed[id] = sealed
}

// replayFilter is bitswap's WithPeerBlockRequestFilter: a block of a
// private broadcast's replay (its chunks are sealed) goes only to its
// broadcaster and the devices of the newest roster this node holds; with
// no roster (the node restarted), to nobody but the broadcaster. A
// public broadcast's blocks go to anyone, as before.
func (n *Node) replayFilter(p peer.ID, c cid.Cid) bool {
	if n.store == nil {
		return false
	}
	id, err := n.store.BroadcastOf(c)
	if err != nil {
		return true // bitswap answers DONT_HAVE
	}
	private, ok := n.private.privateKnown(id)
	if !ok {
		ch, err := n.store.Chunk(context.Background(), c)
		if err != nil {
			return true
		}
		private = ch.Epoch != 0
		n.private.setSealed(id, private)
	}
	if !private {
		return true
	}
	if root, _, err := link.BroadcasterOf(id); err == nil && root == p {
		return true
	}
	r := n.private.roster(id)
	return r != nil && r.HasPeer(p)
}

func (t *privateTopics) setRing(id string, r *keyring) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rings == nil {
		t.rings = map[string]*keyring{}
	}
	t.rings[id] = r
}

func (t *privateTopics) ring(id string) *keyring {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rings[id]
}

// replayMedia is the replay swarm's Open: what the VOD plays of a stored
// chunk. A private broadcast's payload is opened with the keys this node
// holds for it (the ones it watched with, or fetched for the replay); the
// init segment inline in the manifest comes without its epoch, so each
// epoch's keys are tried on it (a broadcast has a few: GCM refuses the
// wrong ones at once).
func (n *Node) replayMedia(c *chunk.Chunk) ([]byte, error) {
	ring := n.private.ring(c.Broadcast)
	switch {
	case ring == nil && c.Epoch != 0:
		return nil, fmt.Errorf("%w: no keys for a private replay", ErrNotMember)
	case ring == nil:
		return c.Payload, nil
	case c.Epoch != 0:
		p, ok, err := ring.open(c)
		if !ok {
			return nil, fmt.Errorf("%w: no keys of epoch %d", audience.ErrWrongEpoch, c.Epoch)
		}
		if err != nil {
			return nil, err
		}
		return p.Payload, nil
	}
	for _, e := range ring.epochs() {
		sealed := *c
		sealed.Epoch = e
		if p, ok, err := ring.open(&sealed); ok && err == nil {
			return p.Payload, nil
		}
	}
	return nil, fmt.Errorf("%w: the manifest's init %d opens under none of this node's keys", audience.ErrOpen, c.Seq)
}

// replayKeys gets a private broadcast's keys for its replay when this node
// has none (it did not watch it live): its token says it is a member, the
// mailbox has every epoch's bundle for its device.
func (n *Node) replayKeys(ctx context.Context, id string) error {
	if n.private.ring(id) != nil || n.cfg.Private.Mailbox == nil {
		return nil
	}
	tok, err := n.cfg.Private.Mailbox.Token(ctx, id, n.host.ID())
	if err != nil {
		return nil // not a member, or a public broadcast: the replay says which
	}
	ring, roster, _, err := n.memberKeys(ctx, id, tok)
	if err != nil {
		return err
	}
	n.private.setRoster(roster)
	n.private.setSealed(id, true)
	n.private.setRing(id, ring)
	return nil
}

// commentsLabel and heartsLabel name a private replay's comment log and
// hearts under its replay key.
const (
	commentsLabel = "comments"
	heartsLabel   = "hearts"
)

// sealComments seals a private broadcast's comment log for its manifest
// (answered to anyone) under the newest epoch's replay key; a public
// broadcast's goes as it is.
func (b *Broadcast) sealComments(log []byte) []byte {
	if b.ring == nil || len(log) == 0 {
		return log
	}
	return b.seal(commentsLabel, log)
}

// seal seals what a private broadcast's manifest carries under the
// newest epoch's replay key, or returns nil (left out) when it cannot.
func (b *Broadcast) seal(label string, plain []byte) []byte {
	k := b.ring.get(b.ring.newest())
	if k == nil {
		return nil
	}
	sealed, err := k.SealReplay(b.n.cfg.Private.Rand, label, plain)
	if err != nil {
		b.log.Warn("replay: not sealed: left out", "what", label, "err", err)
		return nil
	}
	return sealed
}

// openComments returns a replay manifest's comment log: opened with the
// broadcast's keys when this node holds them (a private replay), else as
// it is; nil when a private one does not open.
func (n *Node) openComments(m *replay.Manifest) []byte {
	ring := n.private.ring(m.Broadcast)
	if ring == nil || len(m.Comments) == 0 {
		return m.Comments
	}
	return n.openSealed(ring, commentsLabel, m.Comments)
}

// openHearts returns a replay's hearts: the manifest's, or a private
// replay's sealed ones opened with the broadcast's keys when this node
// holds them; none when they do not open or do not parse.
func (n *Node) openHearts(m *replay.Manifest) (time.Time, []uint32) {
	if len(m.Hearts) > 0 || len(m.SealedHearts) == 0 {
		return m.HeartsFrom, m.Hearts
	}
	ring := n.private.ring(m.Broadcast)
	if ring == nil {
		return time.Time{}, nil
	}
	from, counts, err := replay.ParseHearts(n.openSealed(ring, heartsLabel, m.SealedHearts))
	if err != nil {
		return time.Time{}, nil
	}
	return from, counts
}

// openSealed opens what a private manifest sealed under label, or returns
// nil.
func (n *Node) openSealed(ring *keyring, label string, sealed []byte) []byte {
	s, err := audience.ParseSealed(sealed)
	if err != nil {
		return nil
	}
	k := ring.get(s.Epoch)
	if k == nil {
		return nil
	}
	plain, err := k.OpenReplay(label, s)
	if err != nil {
		return nil
	}
	return plain
}
