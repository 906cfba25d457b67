package node

import (
	"context"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// What TestPrivateWire (privwire_test.go) needs of the node's insides.

// Eavesdrop is a non-member that learnt a private topic's name running a
// node changed to take anyone there: its own router lets every peer into
// the topic, joins it and subscribes. What it hears is what the members'
// routers let out.
func Eavesdrop(n *Node, topic string) (*pubsub.Subscription, error) {
	n.private.set(topic, func(peer.ID) bool { return true })
	tp, err := n.ps.Join(topic)
	if err != nil {
		return nil, err
	}
	return tp.Subscribe()
}

// ChatPeers returns the peers n's router counts in b's chat topic: those
// its comments go to.
func ChatPeers(b *Broadcast) []peer.ID { return b.n.ps.ListPeers(b.ChatTopic()) }

// GetBlock asks n's bitswap (every peer it is connected to) for a block.
func GetBlock(ctx context.Context, n *Node, c cid.Cid) ([]byte, error) {
	blk, err := n.bitswap.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	return blk.RawData(), nil
}

// ChatSynced reports whether b's chat room knows the moderation state (it
// matched a beat of the broadcaster's). Until then the room ignores the
// comments it hears, and GossipSub never offers them again.
func ChatSynced(ctx context.Context, b *Broadcast) bool {
	if b.room == nil {
		return false
	}
	st, err := b.room.Moderation(ctx)
	return err == nil && st.Synced
}
