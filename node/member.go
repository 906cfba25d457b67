package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
)

// maxPending bounds the chunks a member holds while it waits for their
// epoch's keys (about 50 s of 200 ms parts).
const maxPending = 256

// keyring is the epochs' keys a node holds for one private broadcast: the
// broadcaster's own, or a member's from its bundles. Every epoch's keys
// are kept while the broadcast is watched: chunks of the previous epoch
// are still in flight after a switch, a late member's backfill and the
// replay reach back to the first. Safe for concurrent use.
type keyring struct {
	mu   sync.RWMutex
	keys map[uint32]*audience.Keys
	max  uint32
	// live is the newest epoch the video was seen in: of a chunk this
	// node opened (a member) or sealed (the broadcaster). A bundle comes
	// Grace before its epoch seals anything, and members poll at their
	// own pace: keys newer than live may not be at every member yet.
	live  uint32
	added chan struct{} // cap 1: keys were added
}

func newKeyring() *keyring {
	return &keyring{keys: map[uint32]*audience.Keys{}, added: make(chan struct{}, 1)}
}

func (r *keyring) add(k *audience.Keys) {
	r.mu.Lock()
	r.keys[k.Epoch()] = k
	r.max = max(r.max, k.Epoch())
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
}

func (r *keyring) get(epoch uint32) *audience.Keys {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[epoch]
}

// epochs lists the epochs whose keys the ring holds.
func (r *keyring) epochs() []uint32 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]uint32, 0, len(r.keys))
	for e := range r.keys {
		out = append(out, e)
	}
	return out
}

func (r *keyring) newest() uint32 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.max
}

// sealed notes that the video is in epoch e.
func (r *keyring) sealed(e uint32) {
	r.mu.Lock()
	r.live = max(r.live, e)
	r.mu.Unlock()
}

// forChat returns the keys a comment is sealed under: the epoch the video
// is in, which every member holds (it plays it), rather than the newest
// this node holds, which a member that has not polled since cannot open —
// and GossipSub never delivers a message it ignored again. Before any
// video, the newest.
func (r *keyring) forChat() *audience.Keys {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if k := r.keys[r.live]; k != nil {
		return k
	}
	return r.keys[r.max]
}

// open returns a private chunk's plaintext as a chunk of its own (the
// players never see ciphertext, and nothing of theirs is stored); a public
// chunk as it is. ok is false when the epoch's keys are not here (yet).
func (r *keyring) open(c *chunk.Chunk) (_ *chunk.Chunk, ok bool, err error) {
	if c.Epoch == 0 {
		return c, true, nil
	}
	k := r.get(c.Epoch)
	if k == nil {
		return nil, false, nil
	}
	plain, err := k.OpenChunk(nil, c)
	if err != nil {
		return nil, true, err
	}
	r.sealed(c.Epoch)
	return &chunk.Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Duration: c.Duration,
		Flags: c.Flags, Payload: plain}, true, nil
}

// openForPlay readies a delivered chunk for the players (owner): one
// whose keys are not here waits (at most maxPending of them) until a bundle
// brings them. A sealed part goes to the players sealed: they open it when
// a player takes it (playOpener), into memory they reuse, so a member pays
// for decryption only what it plays and keeps no plaintext.
func (b *Broadcast) openForPlay(c *chunk.Chunk) *chunk.Chunk {
	if b.ring == nil || c.Epoch == 0 {
		return c
	}
	if b.ring.get(c.Epoch) == nil {
		if len(b.pending) < maxPending {
			b.pending = append(b.pending, c)
		} else {
			b.undecryptable.Add(1)
		}
		return nil
	}
	b.ring.sealed(c.Epoch)
	return c
}

// playOpener opens a private broadcast's parts for its players (LL-HLS,
// WHEP) as they take them, counting those that do not open.
type playOpener struct{ b *Broadcast }

func (o playOpener) Open(dst []byte, c *chunk.Chunk) ([]byte, error) {
	k := o.b.ring.get(c.Epoch)
	if k == nil {
		o.b.undecryptable.Add(1)
		return nil, fmt.Errorf("no keys for epoch %d", c.Epoch)
	}
	plain, err := k.OpenChunk(dst, c)
	if err != nil {
		o.b.undecryptable.Add(1)
		o.b.log.Debug("a chunk did not open", "seq", c.Seq, "epoch", c.Epoch, "err", err)
	}
	return plain, err
}

func (playOpener) PlainLen(c *chunk.Chunk) int { return max(len(c.Payload)-audience.Overhead, 0) }

// keysAdded plays the chunks that waited for keys (owner).
func (b *Broadcast) keysAdded() {
	waiting := b.pending
	b.pending = nil
	for _, c := range waiting {
		b.play(c)
	}
}

// joinPrivate finds out, before a viewer joins the tree, whether the
// broadcast is private, by presenting this node's token (or none) to the
// link's first peer that answers: nil ring for a public broadcast;
// ErrNotMember or ErrRefused (with the peer's reason) for one this node may
// not watch; otherwise the keys, roster and token it joins with.
func (n *Node) joinPrivate(ctx context.Context, l link.Link) (ring *keyring, _ *audience.Roster, _ *audience.Token, err error) {
	pc := n.cfg.Private
	var tok *audience.Token
	var mbErr error // the mailbox failed: said if the broadcast turns out private
	if pc.Mailbox != nil {
		t, err := pc.Mailbox.Token(ctx, l.Broadcast, n.host.ID())
		switch {
		case err == nil:
			tok = t
		case !errors.Is(err, mailbox.ErrNotFound) && !errors.Is(err, mailbox.ErrForbidden):
			// A bootstrap that cannot be reached must not keep this
			// node from public broadcasts.
			mbErr = err
		}
	}
	var keys *keyring
	var roster *audience.Roster
	if tok != nil {
		// A member takes its keys first, so that its router knows the
		// private topic before it connects to the tree's peers, whose
		// subscriptions come when they connect.
		var err error
		if keys, roster, _, err = n.memberKeys(ctx, l.Broadcast, tok); err != nil {
			return nil, nil, nil, err
		}
		if k := keys.get(keys.newest()); k != nil {
			rid, _, _ := link.BroadcasterOf(l.Broadcast)
			topic := chat.PrivateTopicPrefix + k.Topic()
			n.private.set(topic, func(p peer.ID) bool { return p == rid || roster.HasPeer(p) })
			defer func() {
				if ring == nil { // refused, or unreachable: no room will take it over
					n.private.set(topic, nil)
				}
			}()
		}
	}
	var errs []error
	for _, p := range l.Peers {
		if p.ID == n.host.ID() {
			continue
		}
		n.host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.TempAddrTTL)
		err := present(ctx, n.host, p.ID, l.Broadcast, tok)
		switch {
		case errors.Is(err, errPublic):
			if tok != nil {
				return nil, nil, nil, fmt.Errorf("%w: %s does not take this broadcast's tokens", ErrRefused, shortPeer(p.ID))
			}
			return nil, nil, nil, nil
		case errors.Is(err, ErrRefused) && tok == nil && mbErr != nil:
			return nil, nil, nil, fmt.Errorf("%w: %w (no token: the mailbox: %w)", ErrNotMember, err, mbErr)
		case errors.Is(err, ErrRefused) && tok == nil:
			return nil, nil, nil, fmt.Errorf("%w: %w", ErrNotMember, err)
		case errors.Is(err, ErrRefused):
			return nil, nil, nil, err
		case err == nil:
			return keys, roster, tok, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", shortPeer(p.ID), err))
	}
	return nil, nil, nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// memberKeys takes a member's roster and bundles from the mailbox.
func (n *Node) memberKeys(ctx context.Context, id string, tok *audience.Token) (*keyring, *audience.Roster, *audience.Token, error) {
	pc := n.cfg.Private
	if pc.DeviceKey == nil {
		return nil, nil, nil, fmt.Errorf("%w: no device key", ErrNoMailbox)
	}
	r, err := pc.Mailbox.Roster(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := r.Verify(id); err != nil {
		return nil, nil, nil, err
	}
	ring := newKeyring()
	if err := n.takeBundles(ctx, id, ring); err != nil {
		return nil, nil, nil, err
	}
	return ring, r, tok, nil
}

// takeBundles opens the bundles of broadcast id newer than the ring's
// newest epoch into it.
func (n *Node) takeBundles(ctx context.Context, id string, ring *keyring) error {
	pc := n.cfg.Private
	bundles, err := pc.Mailbox.Bundles(ctx, id, pc.DeviceKey.Key.Fingerprint(), ring.newest())
	if err != nil {
		return err
	}
	for _, bd := range bundles {
		k, err := bd.Open(pc.DeviceKey, id)
		if err != nil {
			n.log.Warn("a bundle did not open", "broadcast", shortBroadcast(id), "epoch", bd.Epoch, "err", err)
			continue
		}
		ring.add(k)
	}
	return nil
}

// pollMailbox keeps a member's roster, token and keys fresh: every Poll it
// asks the mailbox for a newer roster (the gate puts out whom it no longer
// admits), a newer token (presented again to the tree's neighbours) and
// the bundles of new epochs.
func (b *Broadcast) pollMailbox() {
	pc := b.n.cfg.Private
	t := b.n.clock.NewTicker(pc.Poll)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C():
		}
		ctx := b.ctx
		if r, err := pc.Mailbox.Roster(ctx, b.id); err == nil {
			b.gate.setRoster(r)
		}
		if tok, err := pc.Mailbox.Token(ctx, b.id, b.n.host.ID()); err == nil && b.gate.setOwn(tok) {
			b.gate.presentAll(ctx)
		}
		if err := b.n.takeBundles(ctx, b.id, b.ring); err != nil {
			b.log.Debug("bundles", "err", err)
		}
		b.gate.recheck()
	}
}
