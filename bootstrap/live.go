package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// LivePublisher publishes go-live events on api.LiveTopic, and scheduled
// broadcasts' reminders on api.ReminderTopic (GossipSub, signed by the
// bootstrap's host key), for the nodes of followers: see
// api.DecodeLiveNotice and api.DecodeReminderNotice for what they check.
// Its Notify is a ServerConfig.OnLive: it never blocks (a full queue
// drops the notice, which the event streams still carry).
type LivePublisher struct {
	topic    *pubsub.Topic
	reminder *pubsub.Topic
	log      *slog.Logger
	queue    chan notice
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// notice is a message queued for one of the publisher's topics.
type notice struct {
	topic *pubsub.Topic
	data  []byte
}

// NewLivePublisher joins api.LiveTopic and api.ReminderTopic on ps.
func NewLivePublisher(ps *pubsub.PubSub, log *slog.Logger) (*LivePublisher, error) {
	t, err := ps.Join(api.LiveTopic)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: join %s: %w", api.LiveTopic, err)
	}
	rt, err := ps.Join(api.ReminderTopic)
	if err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("bootstrap: join %s: %w", api.ReminderTopic, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &LivePublisher{topic: t, reminder: rt, log: log, queue: make(chan notice, 64), cancel: cancel}
	p.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-p.queue:
				if err := n.topic.Publish(ctx, n.data); err != nil && ctx.Err() == nil {
					p.log.Warn("publishing a notice", "topic", n.topic.String(), "err", err)
				}
			}
		}
	})
	return p, nil
}

// Notify queues e for publishing if it is a go-live event or a reminder.
func (p *LivePublisher) Notify(e Event) {
	var n notice
	var err error
	switch {
	case e.Kind == EventLive && e.Listing != nil && !e.Listing.Private:
		n.topic = p.topic
		n.data, err = api.EncodeLiveNotice(e.Listing)
	case e.Kind == EventReminder && e.Schedule != nil && len(e.Followers) > 0:
		n.topic = p.reminder
		n.data, err = api.EncodeReminderNotice(api.Reminder{Step: e.Step, Schedule: e.Schedule})
	default:
		return
	}
	if err != nil {
		return
	}
	select {
	case p.queue <- n:
	default:
		p.log.Warn("notice queue full: dropped", "kind", e.Kind)
	}
}

// Close stops publishing and leaves the topics.
func (p *LivePublisher) Close() error {
	p.cancel()
	p.wg.Wait()
	return errors.Join(p.topic.Close(), p.reminder.Close())
}
