package bootstrap

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// relayACL decides who may hold a relay reservation: by default only
// peers signed in at this bootstrap (RelayConfig.Attested), unless the
// relay is open (RelayConfig.Open); and at most ReservationsPerNetwork
// peers from one network (an IPv4 address, an IPv6 /64: libp2p's own
// limits count IPv6 addresses one by one, of which a customer has 2^64).
// A peer is counted for ReservationTTL from its last reservation (a
// reservation lives that long unless renewed), so the count errs on the
// side of the limit. Anyone may open a circuit to a peer that holds a
// reservation: it is that peer who chose to be reached through the relay.
type relayACL struct {
	open     bool
	attested func(peer.ID) bool
	perNet   int
	ttl      time.Duration
	now      func() time.Time

	mu   sync.Mutex
	nets map[string]map[peer.ID]time.Time // network → peer → until
}

var _ relay.ACLFilter = (*relayACL)(nil)

func newRelayACL(c RelayConfig) *relayACL {
	return &relayACL{open: c.Open, attested: c.Attested, perNet: c.ReservationsPerNetwork, ttl: c.ReservationTTL,
		now: time.Now, nets: map[string]map[peer.ID]time.Time{}}
}

// AllowReserve implements relay.ACLFilter.
func (a *relayACL) AllowReserve(p peer.ID, addr ma.Multiaddr) bool {
	if !a.open && (a.attested == nil || !a.attested(p)) {
		return false
	}
	network := relayNetwork(addr)
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for n, ps := range a.nets {
		for q, until := range ps {
			if !now.Before(until) {
				delete(ps, q)
			}
		}
		if len(ps) == 0 {
			delete(a.nets, n)
		}
	}
	ps := a.nets[network]
	if _, renewal := ps[p]; !renewal && len(ps) >= a.perNet {
		return false
	}
	if ps == nil {
		ps = map[peer.ID]time.Time{}
		a.nets[network] = ps
	}
	ps[p] = now.Add(a.ttl)
	return true
}

// AllowConnect implements relay.ACLFilter.
func (a *relayACL) AllowConnect(peer.ID, ma.Multiaddr, peer.ID) bool { return true }

// relayNetwork is the network a peer's address counts under: its IPv4
// address, its IPv6 /64, or the whole address when it has no IP.
func relayNetwork(addr ma.Multiaddr) string {
	ip, err := manet.ToIP(addr)
	if err != nil {
		return addr.String()
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return addr.String()
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	pf, _ := a.Prefix(64)
	return pf.String()
}
