package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// Go-live notices over libp2p: the bootstrap publishes each public
// broadcast that goes live on LiveTopic (GossipSub, signed by the
// bootstrap's host key); a node subscribed through its bootstrap
// connection takes notices only from its bootstraps' peer IDs and keeps
// those of the accounts it follows. The message carries the broadcast, its
// link and its broadcaster's identity, not the followers: the follow graph
// stays on the bootstrap.

// maxLiveNotice bounds a notice on LiveTopic.
const maxLiveNotice = 8 << 10

// LiveNotice is a LiveTopic message.
type LiveNotice struct {
	Broadcast *Broadcast `json:"broadcast"`
}

// DecodeLiveNotice parses and checks a LiveTopic message.
func DecodeLiveNotice(b []byte) (*Broadcast, error) {
	if len(b) > maxLiveNotice {
		return nil, fmt.Errorf("%w: live notice of %d bytes", ErrBadRequest, len(b))
	}
	var n LiveNotice
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("%w: live notice: %w", ErrBadRequest, err)
	}
	bc := n.Broadcast
	if bc == nil {
		return nil, fmt.Errorf("%w: live notice without a broadcast", ErrBadRequest)
	}
	owner, err := broadcasterOf(bc.ID)
	if err != nil {
		return nil, err
	}
	if bc.Broadcaster != owner.String() {
		return nil, fmt.Errorf("%w: live notice: broadcaster %q does not match the ID", ErrBadRequest, clip(bc.Broadcaster, 80))
	}
	a := Announcement{Title: bc.Title, Link: bc.Link, Started: bc.Started, Viewers: bc.Viewers, ReplayViewers: bc.ReplayViewers, Version: max(bc.Version, 1)}
	if err := a.check(bc.ID, bc.Started, 0); err != nil {
		return nil, err
	}
	if bc.Who != nil {
		if err := validAccountKey(bc.Who.Key()); err != nil {
			return nil, err
		}
	}
	return bc, nil
}

// LivePublisher publishes go-live events on LiveTopic. Its Notify is a
// Config.OnLive: it never blocks (a full queue drops the notice, which the
// event streams still carry).
type LivePublisher struct {
	topic  *pubsub.Topic
	log    *slog.Logger
	queue  chan []byte
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewLivePublisher joins LiveTopic on ps.
func NewLivePublisher(ps *pubsub.PubSub, log *slog.Logger) (*LivePublisher, error) {
	t, err := ps.Join(LiveTopic)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: join %s: %w", LiveTopic, err)
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
	if e.Kind != EventLive || e.Broadcast == nil || e.Broadcast.Private {
		return
	}
	b, err := json.Marshal(LiveNotice{Broadcast: e.Broadcast})
	if err != nil || len(b) > maxLiveNotice {
		return
	}
	select {
	case p.queue <- b:
	default:
		p.log.Warn("live notice queue full: dropped", "broadcast", e.Broadcast.ID)
	}
}

// Close stops publishing and leaves the topic.
func (p *LivePublisher) Close() error {
	p.cancel()
	p.wg.Wait()
	return p.topic.Close()
}
