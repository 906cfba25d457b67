// What a node does for browser light nodes (web/peer): the addresses a
// page dials, and the small circuit relay through which one browser
// reaches another to set up a WebRTC connection between them.

package node

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	webrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"
)

// BrowserAddrs returns where a browser light node dials this node: its
// WebTransport and WebRTC-direct addresses (with /certhash) and
// /p2p/<peer ID>; none when it listens on neither.
func (n *Node) BrowserAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range n.Addrs() {
		if browserDialable(a) {
			out = append(out, a)
		}
	}
	return out
}

// browserDialable says whether a browser can dial a: WebTransport or
// WebRTC-direct with a certificate hash (the browser checks it instead of
// a CA), or a circuit through either to another browser (…/p2p-circuit/
// webrtc, the relay carrying only the WebRTC signalling).
func browserDialable(a ma.Multiaddr) bool {
	if ok, hashes := webtransport.IsWebtransportMultiaddr(a); ok && hashes > 0 {
		return true
	}
	ok, hashes := webrtc.IsWebRTCDirectMultiaddr(a)
	return ok && hashes > 0
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
// listens where a browser can reach it (WebTransport or WebRTC-direct).
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
