package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// LivePublisher publishes go-live events on api.LiveTopic (GossipSub,
// signed by the bootstrap's host key), for the nodes of followers: see
// api.DecodeLiveNotice for what they check. Its Notify is a
// ServerConfig.OnLive: it never blocks (a full queue drops the notice,
// which the event streams still carry).
type LivePublisher struct {
	topic  *pubsub.Topic
	log    *slog.Logger
	queue  chan []byte
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewLivePublisher joins api.LiveTopic on ps.
func NewLivePublisher(ps *pubsub.PubSub, log *slog.Logger) (*LivePublisher, error) {
	t, err := ps.Join(api.LiveTopic)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: join %s: %w", api.LiveTopic, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &LivePublisher{topic: t, log: log, queue: make(chan []byte, 64), cancel: cancel}
	p.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-p.queue:
				if err := t.Publish(ctx, b); err != nil && ctx.Err() == nil {
					p.log.Warn("publishing a live notice", "err", err)
				}
			}
		}
	})
	return p, nil
}

// Notify queues e for publishing if it is a go-live event.
func (p *LivePublisher) Notify(e Event) {
	if e.Kind != EventLive || e.Listing == nil || e.Listing.Private {
		return
	}
	b, err := api.EncodeLiveNotice(e.Listing)
	if err != nil {
		return
	}
	select {
	case p.queue <- b:
	default:
		p.log.Warn("live notice queue full: dropped", "broadcast", e.Listing.ID)
	}
}

// Close stops publishing and leaves the topic.
func (p *LivePublisher) Close() error {
	p.cancel()
	p.wg.Wait()
	return p.topic.Close()
}
