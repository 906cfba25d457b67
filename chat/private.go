package chat

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PrivateTopicPrefix begins a private broadcast's room topic: the prefix
// and a name derived from the broadcast's secret (audience.Keys.Topic), so
// that the topic says nothing of the broadcast to whoever sees it without
// the secret.
const PrivateTopicPrefix = "/peerscope/chat-private/1.0.0/"

// Sealing makes a room a private broadcast's (issue 13): every message is
// sealed before it is published and opened before any validator reads it,
// so the topic carries nothing a non-member can read; the node's router
// also keeps non-members off the topic (pubsub.WithPeerFilter).
type Sealing struct {
	// Topic is the topic's name after PrivateTopicPrefix
	// (audience.Keys.Topic).
	Topic string
	// Seal seals an envelope this node publishes (audience.Keys.SealChat
	// under the newest epoch's chat key).
	Seal func(msg []byte) ([]byte, error)
	// Open opens a message an author published (audience.ParseSealed, the
	// keys of its epoch, OpenChat(author)). A message that does not open
	// is ignored, not rejected: a member may not have a new epoch's keys
	// yet, and an honest relay must not be penalised for it.
	Open func(author peer.ID, msg []byte) ([]byte, error)
	// Member, when set, says whether a peer may have the room's state
	// (StateProtocol: the moderation in force); others are refused.
	Member func(peer.ID) bool
}

func (s *Sealing) check() error {
	if s.Topic == "" || s.Seal == nil || s.Open == nil {
		return fmt.Errorf("%w: a private room needs its topic, Seal and Open", ErrInvalidConfig)
	}
	return nil
}

// topicName is the room's GossipSub topic.
func (c *Config) topicName() string {
	if c.Private != nil {
		return PrivateTopicPrefix + c.Private.Topic
	}
	return TopicPrefix + c.Broadcast
}

// send publishes an envelope this node made, sealed in a private room.
func (r *Room) send(ctx context.Context, b []byte) error {
	if p := r.cfg.Private; p != nil {
		sealed, err := p.Seal(b)
		if err != nil {
			return fmt.Errorf("chat: sealing: %w", err)
		}
		b = sealed
	}
	return r.topic.Publish(ctx, b)
}

// opened is what a validator reads of a message: in a private room its
// plaintext (ok false: it does not open here).
func (r *Room) opened(author peer.ID, data []byte) ([]byte, bool) {
	p := r.cfg.Private
	if p == nil {
		return data, true
	}
	plain, err := p.Open(author, data)
	if err != nil {
		r.log.Debug("a sealed message did not open", "from", shortID(author), "err", err)
		return nil, false
	}
	return plain, true
}
