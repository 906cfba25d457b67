package node

import (
	"fmt"
	"strings"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/chat"
)

// privateTopics maps the private chat topics this node is in to their
// broadcasts, for the router's peer filter (which runs on pubsub's loop:
// a lock of its own, never held while calling out).
type privateTopics struct {
	mu      sync.RWMutex
	m       map[string]func(peer.ID) bool // topic → who may be a peer in it
	rosters map[string]*audience.Roster   // privreplay.go
	sealed  map[string]bool               // privreplay.go
	rings   map[string]*keyring           // privreplay.go: kept for the replays
}

func (t *privateTopics) set(topic string, member func(peer.ID) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]func(peer.ID) bool{}
	}
	if member == nil {
		delete(t.m, topic)
	} else {
		t.m[topic] = member
	}
}

func (t *privateTopics) get(topic string) func(peer.ID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[topic]
}

// chatPeerFilter is the GossipSub router's peer filter: on a private
// broadcast's topic, only the broadcaster and the devices its roster lists
// are peers (a non-member is never in the topic's mesh, never gossiped
// to, never served); every other topic is open.
func (n *Node) chatPeerFilter(p peer.ID, topic string) bool {
	if !strings.HasPrefix(topic, chat.PrivateTopicPrefix) {
		return true
	}
	member := n.private.get(topic)
	return member != nil && member(p)
}

// chatSealing is a private broadcast's room sealing: the topic from the
// broadcast secret, comments sealed under the chat key of the epoch the
// video is in (keyring.forChat).
func (b *Broadcast) chatSealing() (*chat.Sealing, error) {
	k := b.ring.get(b.ring.newest())
	if k == nil {
		return nil, fmt.Errorf("%w: no keys yet", audience.ErrWrongEpoch)
	}
	self := b.n.host.ID()
	rand := b.n.cfg.Private.Rand
	return &chat.Sealing{
		Topic:  k.Topic(),
		Member: b.gate.member,
		Seal: func(msg []byte) ([]byte, error) {
			return b.ring.forChat().SealChat(rand, self, msg)
		},
		Open: func(author peer.ID, msg []byte) ([]byte, error) {
			s, err := audience.ParseSealed(msg)
			if err != nil {
				return nil, err
			}
			k := b.ring.get(s.Epoch)
			if k == nil {
				return nil, fmt.Errorf("%w: no keys of epoch %d here", audience.ErrWrongEpoch, s.Epoch)
			}
			return k.OpenChat(author, s)
		},
	}, nil
}

// member reports whether p may be among the broadcast's peers at all: the
// broadcaster, or a device of the newest roster.
func (g *gate) member(p peer.ID) bool {
	if p == g.root {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.roster != nil && g.roster.HasPeer(p)
}

// chatSubFilter keeps a non-member's subscription to a private topic out
// of the router's books: GossipSub's flood publishing sends a node's own
// messages to every peer it knows in the topic, whatever the peer filter
// says, so a non-member must not be known in it at all.
type chatSubFilter struct{ n *Node }

var _ pubsub.SubscriptionFilter = chatSubFilter{}

func (f chatSubFilter) CanSubscribe(string) bool { return true }

func (f chatSubFilter) FilterIncomingSubscriptions(p peer.ID, subs []*pubsubpb.RPC_SubOpts) ([]*pubsubpb.RPC_SubOpts, error) {
	out := subs[:0:0]
	for _, s := range subs {
		// A topic this node is not in (yet) is not judged: a peer's
		// subscriptions come once, when it connects, which may be before
		// this node knows the topic (Watch registers it before it
		// connects to the tree, when it can).
		t := s.GetTopicid()
		if f.n.private.get(t) == nil || f.n.chatPeerFilter(p, t) {
			out = append(out, s)
		}
	}
	return out, nil
}

// ChatTopic returns the GossipSub topic of the broadcast's chat room (""
// without one): a private broadcast's is PrivateTopicPrefix and a name
// from its secret.
func (b *Broadcast) ChatTopic() string {
	if b.room == nil {
		return ""
	}
	return b.room.Topic()
}
