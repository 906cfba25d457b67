package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// relayedOK is the host as GossipSub sees it: a peer reached only through a
// circuit relay counts as connected, and chat's streams may open over such
// a connection. go-libp2p-pubsub takes a peer only once the network says
// Connected, and a relayed ("limited") connection says Limited, so without
// this a viewer behind a NAT that hole punching cannot cross (symmetric, as
// on many mobile networks) would get the video through the relay and no
// comments at all. Chat is a few hundred bytes a second; the relays are
// sized for video.
type relayedOK struct{ host.Host }

func (h relayedOK) Network() network.Network { return relayedOKNet{h.Host.Network()} }

func (h relayedOK) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	return h.Host.NewStream(network.WithAllowLimitedConn(ctx, "chat"), p, pids...)
}

type relayedOKNet struct{ network.Network }

func (n relayedOKNet) Connectedness(p peer.ID) network.Connectedness {
	if c := n.Network.Connectedness(p); c != network.Limited {
		return c
	}
	return network.Connected
}
