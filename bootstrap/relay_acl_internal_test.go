package bootstrap

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/internal/testutil"
)

// TestRelayACL: reservations for attested peers only unless the relay is
// open; at most ReservationsPerNetwork peers per IPv4 address or IPv6 /64
// (a renewal is not a new one); counted until their reservation's TTL.
func TestRelayACL(t *testing.T) {
	peers := make([]peer.ID, 5)
	for i := range peers {
		_, peers[i] = testutil.SeededPeer(byte(i + 1))
	}
	attested := map[peer.ID]bool{peers[0]: true, peers[1]: true, peers[2]: true}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := newRelayACL(RelayConfig{Attested: func(p peer.ID) bool { return attested[p] }, ReservationsPerNetwork: 2, ReservationTTL: time.Hour})
	a.now = func() time.Time { return now }
	v6 := func(last string) ma.Multiaddr { return ma.StringCast("/ip6/2001:db8:1:2::" + last + "/tcp/4001") }
	if a.AllowReserve(peers[3], v6("1")) {
		t.Fatal("an anonymous peer reserved")
	}
	if !a.AllowReserve(peers[0], v6("1")) || !a.AllowReserve(peers[1], v6("2")) {
		t.Fatal("attested peers refused")
	}
	if a.AllowReserve(peers[2], v6("3")) {
		t.Fatal("a third peer from one /64 reserved, the limit is 2")
	}
	if !a.AllowReserve(peers[0], v6("9")) {
		t.Fatal("a renewal refused")
	}
	if !a.AllowReserve(peers[2], ma.StringCast("/ip6/2001:db8:1:3::1/udp/4001/quic-v1")) {
		t.Fatal("another /64 refused")
	}
	if !a.AllowReserve(peers[2], ma.StringCast("/ip4/192.0.2.1/tcp/1")) {
		t.Fatal("an IPv4 address refused")
	}
	now = now.Add(time.Hour)
	if !a.AllowReserve(peers[2], v6("3")) {
		t.Fatal("refused after the others' reservations lapsed")
	}
	open := newRelayACL(RelayConfig{Open: true, ReservationsPerNetwork: 2, ReservationTTL: time.Hour})
	if !open.AllowReserve(peers[4], v6("1")) || !open.AllowConnect(peers[4], v6("1"), peers[0]) {
		t.Fatal("an open relay refused an anonymous peer")
	}
}
