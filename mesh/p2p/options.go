package p2p

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/mesh"
)

// Metrics receives byte counts per peer and message. chunkBytes is the
// media payload a chunk message carries (0 for other messages);
// controlBytes is everything else in the frame (headers, signature, length
// prefix, every control message). Sent is counted when the frame is handed
// to the stream, Received when it was read. The methods are called from
// many goroutines and must be safe for that; they must not block.
type Metrics interface {
	Sent(to mesh.PeerID, m *mesh.Message, chunkBytes, controlBytes int)
	Received(from mesh.PeerID, m *mesh.Message, chunkBytes, controlBytes int)
}

// Option configures a Tree.
type Option func(*options) error

type options struct {
	logger     *slog.Logger
	metrics    Metrics
	clock      clock.Clock
	deliver    func(*chunk.Chunk)
	events     func(mesh.Event)
	tick       time.Duration
	queueBytes int
	queueDelay time.Duration
	inbox      int
	protocol   protocol.ID
	sendFilter SendFilter
	admit      func(peer.ID) error
	introduce  func(context.Context, peer.ID) error
}

// SendFilter sees every message the node is about to send and says what
// goes instead: out (nil: nothing), and, if frame is not nil, the bytes to
// write in its place (a whole frame, length prefix included), which need
// not be what out encodes to. It runs on the owner goroutine.
type SendFilter func(to mesh.PeerID, m *mesh.Message) (out *mesh.Message, frame []byte)

func defaultOptions() options {
	return options{
		logger:     slog.New(slog.DiscardHandler),
		clock:      clock.System{},
		tick:       50 * time.Millisecond,
		queueBytes: 32 << 20,
		queueDelay: 5 * time.Second,
		inbox:      256,
		protocol:   ProtocolID,
	}
}

// WithLogger sets the logger; the node scopes it with its peer ID.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithMetrics sets the byte-count hooks.
func WithMetrics(m Metrics) Option {
	return func(o *options) error { o.metrics = m; return nil }
}

// WithClock replaces the system clock (tests: clock.NewFake).
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c != nil {
			o.clock = c
		}
		return nil
	}
}

// WithDeliver sets the function that receives verified chunks, each sequence
// number once, in the order the node accepted them. It runs on the owner
// goroutine: it must return quickly (hand the chunk to a channel or a
// buffer) and must not call the Tree's methods. The chunk must not be
// modified.
func WithDeliver(f func(*chunk.Chunk)) Option {
	return func(o *options) error { o.deliver = f; return nil }
}

// WithEvents sets the function that receives the node's events; like
// WithDeliver's it runs on the owner goroutine.
func WithEvents(f func(mesh.Event)) Option {
	return func(o *options) error { o.events = f; return nil }
}

// WithTickInterval sets how often the node's Tick runs (default 50 ms). It
// should be at most half the HeartbeatInterval.
func WithTickInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return ErrInvalidOption
		}
		o.tick = d
		return nil
	}
}

// WithQueueBytes bounds what may wait in one peer's outbound queue (default
// 32 MiB); past it the peer is dropped. It is a backstop: WithQueueDelay
// is what catches a slow peer at any bitrate. It must leave room for a
// backfill burst (up to mesh.Config.Window chunks at once).
func WithQueueBytes(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return ErrInvalidOption
		}
		o.queueBytes = n
		return nil
	}
}

// WithQueueDelay sets how long messages may wait in a peer's outbound queue
// without the peer's writer taking any (default 5 s): a peer that cannot
// take what it is sent for that long is dropped, so it rejoins a parent that
// can feed it instead of falling ever further behind the live edge.
func WithQueueDelay(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return ErrInvalidOption
		}
		o.queueDelay = d
		return nil
	}
}

// WithProtocol makes the node speak id instead of ProtocolID. A host serves
// one Tree per protocol ID, so a host that takes part in several broadcasts'
// trees gives each its own (the node package uses ProtocolID + "/" + the
// broadcast ID). Every member of one tree must use the same ID.
func WithProtocol(id protocol.ID) Option {
	return func(o *options) error {
		if id == "" {
			return ErrInvalidOption
		}
		o.protocol = id
		return nil
	}
}

// WithSendFilter makes the node pass every message it sends through f. It
// is for tests and benchmarks only: it is how they build an adversary out
// of a real node (a sybil that claims all the capacity there is and
// forwards no chunk, a relay that pads every chunk), which the honest nodes
// around it must survive. A node that serves real viewers never sets it.
func WithSendFilter(f SendFilter) Option {
	return func(o *options) error { o.sendFilter = f; return nil }
}

// WithAdmit makes the node take tree streams only from the peers admit
// lets in (nil error): a private broadcast's tree admits its members and
// the broadcaster, and nobody else can attach, probe or feed it. It is
// checked when a peer opens a stream, so a peer that is admitted later
// (it presented its membership token on another protocol first) gets in
// on its next try; Refuse puts out one admitted before. It runs on the
// stream's goroutine and must not block.
func WithAdmit(admit func(peer.ID) error) Option {
	return func(o *options) error { o.admit = admit; return nil }
}

// WithIntroduce makes the node call introduce before it opens its stream
// to a peer (a parent it attaches to, a child it feeds, a candidate it
// probes): a private broadcast's member presents its membership token
// there, so that the peer's WithAdmit lets it in. An error means the peer
// cannot be written to: the state machine hears it is down and moves on.
// It runs on the peer's writer goroutine, bounded by the dial timeout.
func WithIntroduce(introduce func(ctx context.Context, p peer.ID) error) Option {
	return func(o *options) error { o.introduce = introduce; return nil }
}
