package community

import (
	"context"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// followsRefresh is how often, at most, the follow list is read again
// from the bootstrap.
const followsRefresh = time.Minute

// subscribeLive takes the bootstraps' go-live notices from api.LiveTopic:
// only those first published by a bootstrap's own peer (GossipSub signs
// every message with its origin's key), and only of accounts this node's
// account follows, reach Config.OnLive.
func (c *Community) subscribeLive() error {
	if c.cfg.PubSub == nil || c.cfg.OnLive == nil {
		return nil
	}
	t, err := subscribeNotices(c, api.LiveTopic, "live notices", api.DecodeLiveNotice,
		func(l *api.Listing) string {
			if l.Who == nil {
				return ""
			}
			return l.Who.Key()
		}, c.cfg.OnLive)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.live = t
	c.mu.Unlock()
	return nil
}

// subscribeNotices joins a topic of the bootstraps' notices: a message
// passes validation only when first published by a bootstrap's own peer
// and decoding, and a notice about an account this node's account follows
// (who; "" for none) is handed to take.
func subscribeNotices[N any](c *Community, topic, what string, decode func([]byte) (N, error), who func(N) string, take func(N)) (*pubsub.Topic, error) {
	ps := c.cfg.PubSub
	err := ps.RegisterTopicValidator(topic, func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		c.mu.Lock()
		ok := c.peers[m.GetFrom()]
		c.mu.Unlock()
		if !ok {
			return false
		}
		_, err := decode(m.Data)
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("community: %s: %w", what, err)
	}
	t, err := ps.Join(topic)
	if err != nil {
		return nil, fmt.Errorf("community: %s: %w", what, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("community: %s: %w", what, err)
	}
	c.goBackground(func() {
		defer sub.Cancel()
		for {
			m, err := sub.Next(c.ctx)
			if err != nil {
				return
			}
			n, err := decode(m.Data)
			if err != nil {
				continue
			}
			if k := who(n); k != "" && c.followsAccount(c.ctx, k) {
				take(n)
			}
		}
	})
	return t, nil
}

// followsAccount reports whether this node's account follows key (the
// follow list is read from the bootstrap at most once a minute).
func (c *Community) followsAccount(ctx context.Context, key string) bool {
	c.mu.Lock()
	fresh := c.clock.Now().Sub(c.followsAt) < followsRefresh
	f := c.follows
	c.mu.Unlock()
	if !fresh {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := c.client.Following(cctx)
		cancel()
		f = map[string]bool{}
		for _, k := range list {
			f[k] = true
		}
		if err != nil && !isNotFound(err) {
			c.log.Debug("follow list", "err", err)
		}
		c.mu.Lock()
		c.follows, c.followsAt = f, c.clock.Now()
		c.mu.Unlock()
	}
	return f[key]
}

// subscribeReminders takes the bootstraps' reminders of scheduled
// broadcasts from api.ReminderTopic as subscribeLive takes go-live
// notices: first published by a bootstrap's own peer, of an account this
// node's account follows, they reach Config.OnReminder.
func (c *Community) subscribeReminders() error {
	if c.cfg.PubSub == nil || c.cfg.OnReminder == nil {
		return nil
	}
	t, err := subscribeNotices(c, api.ReminderTopic, "reminders", api.DecodeReminderNotice,
		func(r api.Reminder) string { return r.Schedule.Who.Key() }, c.cfg.OnReminder)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.reminders = t
	c.mu.Unlock()
	return nil
}
