package node

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/link"
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
