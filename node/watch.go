package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// Watch joins a broadcast's tree as a viewer, through the peers of the
// link, and serves it locally. It first asks the link's peers for the
// broadcast's announcement (so a wrong or dead link fails here, with
// ErrUnreachable), then sizes its child slots from the broadcast's bitrate.
// A node watches at most Config.MaxWatching broadcasts at once
// (ErrTooMany). ctx bounds the joining only; Close (of the Broadcast or the
// Node) leaves.
func (n *Node) Watch(ctx context.Context, l link.Link) (*Broadcast, error) {
	rootID, key, err := link.BroadcasterOf(l.Broadcast)
	if err != nil {
		return nil, err
	}
	if len(l.Peers) == 0 {
		return nil, fmt.Errorf("%w: no peer to join through", link.ErrMalformed)
	}
	if n.lookup(l.Broadcast) != nil {
		return nil, fmt.Errorf("%w: %s", ErrJoined, l.Broadcast)
	}
	if err := n.roomToWatch(); err != nil {
		return nil, err // before dialling anyone; add checks again
	}
	// Private or public first: a private broadcast's peers answer its
	// announcement to its members only.
	ring, roster, tok, err := n.joinPrivate(ctx, l)
	if err != nil {
		return nil, err
	}
	var ann announce.Signed
	var errs []error
	for _, p := range l.Peers {
		if p.ID == n.host.ID() {
			continue
		}
		a, err := announce.Fetch(ctx, n.host, p, l.Broadcast, key)
		if err == nil {
			ann = a
			errs = nil
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", shortPeer(p.ID), err))
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case errs != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
	case !ann.Held():
		return nil, fmt.Errorf("%w: the link names only this node", ErrUnreachable)
	}
	b, err := n.newBroadcast(l.Broadcast, false, n.cfg.slotsFor(ann.Bitrate), ann, ring)
	if err != nil {
		return nil, err
	}
	if b.gate != nil {
		b.gate.setRoster(roster)
		b.gate.setOwn(tok)
	}
	b.link = l
	root := mesh.PeerInfo{ID: p2p.MeshID(rootID)}
	for _, p := range l.Peers {
		if p.ID == rootID {
			root = meshInfo(p)
		}
	}
	if err := b.startTree(root); err != nil {
		b.teardown()
		return nil, err
	}
	if err := n.add(b); err != nil {
		b.teardown()
		return nil, err
	}
	if b.gate != nil {
		b.wg.Go(b.pollMailbox)
	}
	b.carrier.AddCandidates(candidates(l)...)
	b.call(func() {
		b.st.following = true
		if b.st.asked {
			b.follow(true)
		}
	})
	if ann.Ended {
		b.wg.Go(b.awaitManifest)
	}
	b.log.Info("watching", "title", ann.Title, "slots", b.slots, "player", b.URLs().Player)
	return b, nil
}

// follow keeps a viewer's announcement fresh (owner): every
// AnnounceInterval, and at once when it attaches or sees the end (asked), it
// asks its parent (or the broadcaster, while it has none) for a newer one,
// until the announcement says the broadcast has ended. One fetch at a time;
// none before the tree is up (what was asked before is done then).
func (b *Broadcast) follow(asked bool) {
	if !b.st.following {
		b.st.asked = b.st.asked || asked
		return
	}
	if b.root || b.st.fetching || b.st.ann.Ended || b.ctx.Err() != nil {
		return
	}
	b.st.fetching = true
	b.wg.Go(func() {
		a, err := b.fetchAnnouncement()
		_ = b.inbox.Call(b.ctx, func() {
			b.st.fetching = false
			if err == nil {
				b.offer(a)
			}
		})
	})
}

// fetchAnnouncement asks this node's parent, then the broadcaster, for the
// announcement.
func (b *Broadcast) fetchAnnouncement() (announce.Signed, error) {
	target := peer.AddrInfo{ID: b.rootID}
	ctx, cancel := context.WithTimeout(b.ctx, announce.Timeout)
	defer cancel()
	if st, _, err := b.tree.Status(ctx); err == nil && st.Parent != "" {
		if pid, err := p2p.PeerID(st.Parent); err == nil {
			target.ID = pid
		}
	}
	a, err := announce.Fetch(ctx, b.n.host, target, b.id, b.key)
	if err != nil && target.ID != b.rootID {
		a, err = announce.Fetch(ctx, b.n.host, peer.AddrInfo{ID: b.rootID}, b.id, b.key)
	}
	if err != nil {
		b.log.Debug("announcement not fetched", "from", shortPeer(target.ID), "err", err)
	}
	return a, err
}
