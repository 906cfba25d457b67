// What a node does for browser light nodes (web/peer): the addresses a
// page dials, and the small circuit relay through which one browser
// reaches another to set up a WebRTC connection between them.

package node

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	webrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	ma "github.com/multiformats/go-multiaddr"
)

// BrowserAddrs returns where a browser light node dials this node: its
// WebRTC-direct addresses (with /certhash) and /p2p/<peer ID>; none when
// it does not listen on WebRTC-direct.
func (n *Node) BrowserAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range n.Addrs() {
		if ok, hashes := webrtc.IsWebRTCDirectMultiaddr(a); ok && hashes > 0 {
			out = append(out, a)
		}
	}
	return out
}

// signalResources bound the relay browsers use to reach each other: it
// carries WebRTC signalling (an offer, an answer, ICE candidates: a few
// KB), never media, which goes browser to browser once connected. So a
// circuit gets 64 KiB and a minute; a reservation lasts an hour (a page
// that relays renews it).
func signalResources() relay.Resources {
	r := relay.DefaultResources()
	r.Limit = &relay.RelayLimit{Duration: time.Minute, Data: 64 << 10}
	r.MaxReservations = 256
	r.MaxCircuits = 16
	// Browsers behind one NAT (a household, an office) share an IP.
	r.MaxReservationsPerIP = 32
	return r
}

// startSignalRelay starts the node's signalling relay when the node
// listens on WebRTC-direct (a browser can reach it at all).
func (n *Node) startSignalRelay() error {
	if len(n.BrowserAddrs()) == 0 {
		return nil
	}
	r, err := relay.New(n.host, relay.WithResources(signalResources()))
	if err != nil {
		return fmt.Errorf("node: signalling relay: %w", err)
	}
	n.signal = r
	return nil
}
