package p2plimit

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/peerscope/peerscope/internal/pbwire"
)

// The services: one per protocol family of ours.
const (
	// ServiceMesh is the relay tree (/peerscope/mesh/1.2.0/<broadcast>):
	// one long-lived stream per neighbour and broadcast, carrying chunks
	// of up to mesh.MaxFrameSize.
	ServiceMesh = "peerscope.mesh"
	// ServiceInfo is the announcement protocol (/peerscope/info/1.0.0):
	// one small request and answer per stream.
	ServiceInfo = "peerscope.info"
	// ServiceReplay is the replay protocol (/peerscope/replay/…).
	ServiceReplay = "peerscope.replay"
	// ServiceChatState is the chat's state protocol
	// (/peerscope/chat-state/1.0.0/<broadcast>).
	ServiceChatState = "peerscope.chat-state"
	// ServiceAudience is a private broadcast's admission protocol
	// (/peerscope/audience/1.0.0/<broadcast>): one token, one answer.
	ServiceAudience = "peerscope.audience"
)

// Limit is what one service allows: inbound streams open at once from one
// peer and from all, and the memory their frames may hold, per peer and in
// all.
type Limit struct {
	Service                    string
	PeerStreams, Streams       int
	PeerMemory, Memory         int64
	PeerOutStreams, OutStreams int
}

// Limits are the services' limits. A peer is a parent or a child in a few
// broadcasts at most, each of which opens one tree stream a direction (two
// for a moment while a writer moves off a relay): 8 inbound tree streams
// per peer is ample, and its memory holds a few of the largest frames
// (4 MiB + 64 KiB) being read at once. The request/response protocols
// answer in one exchange each, under a deadline: a peer that needs more
// than a few at once is flooding.
var Limits = []Limit{
	{Service: ServiceMesh, PeerStreams: 8, Streams: 2048, PeerMemory: 24 << 20, Memory: 512 << 20, PeerOutStreams: 16, OutStreams: 4096},
	{Service: ServiceInfo, PeerStreams: 4, Streams: 512, PeerMemory: 1 << 20, Memory: 32 << 20, PeerOutStreams: 16, OutStreams: 1024},
	{Service: ServiceReplay, PeerStreams: 4, Streams: 512, PeerMemory: 4 << 20, Memory: 64 << 20, PeerOutStreams: 16, OutStreams: 1024},
	{Service: ServiceAudience, PeerStreams: 4, Streams: 512, PeerMemory: 1 << 20, Memory: 16 << 20, PeerOutStreams: 16, OutStreams: 1024},
	{Service: ServiceChatState, PeerStreams: 2, Streams: 128, PeerMemory: 1 << 20, Memory: 32 << 20, PeerOutStreams: 8, OutStreams: 256},
}

// AddLimits adds the services' limits to a scaling configuration.
func AddLimits(cfg *rcmgr.ScalingLimitConfig) {
	for _, l := range Limits {
		cfg.AddServiceLimit(l.Service,
			rcmgr.BaseLimit{StreamsInbound: l.Streams, StreamsOutbound: l.OutStreams, Streams: l.Streams + l.OutStreams, Memory: l.Memory},
			rcmgr.BaseLimitIncrease{})
		cfg.AddServicePeerLimit(l.Service,
			rcmgr.BaseLimit{StreamsInbound: l.PeerStreams, StreamsOutbound: l.PeerOutStreams, Streams: l.PeerStreams + l.PeerOutStreams, Memory: l.PeerMemory},
			rcmgr.BaseLimitIncrease{})
	}
}

// ResourceManager returns libp2p's default resource manager (its default
// limits, scaled to the machine, and its own services') with ours added.
func ResourceManager(opts ...rcmgr.Option) (network.ResourceManager, error) {
	cfg := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&cfg)
	AddLimits(&cfg)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(cfg.AutoScale()), append([]rcmgr.Option{rcmgr.WithMetricsDisabled()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("p2plimit: %w", err)
	}
	return rm, nil
}

// Option is ResourceManager as a libp2p option.
func Option() libp2p.Option {
	return func(cfg *libp2p.Config) error {
		rm, err := ResourceManager()
		if err != nil {
			return err
		}
		return cfg.Apply(libp2p.ResourceManager(rm))
	}
}

// Accept attaches an inbound stream to its service. Over the service's
// limits (this peer's or everyone's) it resets the stream and returns the
// resource manager's error.
func Accept(s network.Stream, service string) error {
	if err := s.Scope().SetService(service); err != nil {
		_ = s.Reset()
		return fmt.Errorf("p2plimit: %s: %w", service, err)
	}
	return nil
}

// Reserve charges a frame of n bytes, about to be read, to a stream's
// scope (s.Scope(); and so to its service, its peer and the system);
// release returns it. Frames up to pbwire.EagerFrame are not charged: they
// cost less than the reservation's bookkeeping is worth, and the stream
// caps bound them.
func Reserve(scope network.ResourceScope, n int) (release func(), err error) {
	if n <= pbwire.EagerFrame {
		return func() {}, nil
	}
	if err := scope.ReserveMemory(n, network.ReservationPriorityHigh); err != nil {
		return nil, fmt.Errorf("p2plimit: a frame of %d bytes: %w", n, err)
	}
	return func() { scope.ReleaseMemory(n) }, nil
}
