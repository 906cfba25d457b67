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
	ps := c.cfg.PubSub
	if ps == nil || c.cfg.OnLive == nil {
		return nil
	}
	err := ps.RegisterTopicValidator(api.LiveTopic, func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		c.mu.Lock()
		ok := c.peers[m.GetFrom()]
		c.mu.Unlock()
		if !ok {
			return false
		}
		_, err := api.DecodeLiveNotice(m.Data)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("community: live notices: %w", err)
	}
	t, err := ps.Join(api.LiveTopic)
	if err != nil {
		return fmt.Errorf("community: live notices: %w", err)
	}
	c.live = t
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("community: live notices: %w", err)
	}
	c.goBackground(func() {
		defer sub.Cancel()
		for {
			m, err := sub.Next(c.ctx)
			if err != nil {
				return
			}
			l, err := api.DecodeLiveNotice(m.Data)
			if err != nil || l.Who == nil || !c.followsAccount(c.ctx, l.Who.Key()) {
				continue
			}
			c.cfg.OnLive(l)
		}
	})
	return nil
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
	ps := c.cfg.PubSub
	if ps == nil || c.cfg.OnReminder == nil {
		return nil
	}
	err := ps.RegisterTopicValidator(api.ReminderTopic, func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		c.mu.Lock()
		ok := c.peers[m.GetFrom()]
		c.mu.Unlock()
		if !ok {
			return false
		}
		_, err := api.DecodeReminderNotice(m.Data)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("community: reminders: %w", err)
	}
	t, err := ps.Join(api.ReminderTopic)
	if err != nil {
		return fmt.Errorf("community: reminders: %w", err)
	}
	c.mu.Lock()
	c.reminders = t
	c.mu.Unlock()
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("community: reminders: %w", err)
	}
	c.goBackground(func() {
		defer sub.Cancel()
		for {
			m, err := sub.Next(c.ctx)
			if err != nil {
				return
			}
			r, err := api.DecodeReminderNotice(m.Data)
			if err != nil || !c.followsAccount(c.ctx, r.Schedule.Who.Key()) {
				continue
			}
			c.cfg.OnReminder(r)
		}
	})
	return nil
}
