package link

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Scheme starts every link.
const Scheme = "peerscope://"

// Limits of a link, so that a pasted or hostile one costs little.
const (
	MaxLen   = 4096 // bytes of the whole link
	MaxPeers = 16   // peer= parameters
)

// Link is what a person shares to let others watch a broadcast: its ID
// and peers to join its tree through (the broadcaster, or any node that
// watches it). Written out it reads
//
//	peerscope://<broadcast ID>?peer=<multiaddr>/p2p/<peer ID>&peer=…
//
// with one peer= per address; a peer may appear with several addresses.
type Link struct {
	Broadcast string          // the broadcast ID
	Peers     []peer.AddrInfo // where to join, best first
}

// Broadcaster returns the peer ID of the broadcast's broadcaster.
func (l Link) Broadcaster() (peer.ID, error) {
	pid, _, err := BroadcasterOf(l.Broadcast)
	return pid, err
}

// String writes the link out. Multiaddrs are written as they are when they
// hold only characters that need no escaping in a query, which is the
// usual case, so a link stays readable.
func (l Link) String() string {
	var b strings.Builder
	b.WriteString(Scheme)
	b.WriteString(l.Broadcast)
	sep := "?"
	for _, p := range l.Peers {
		suffix := "/p2p/" + p.ID.String()
		for _, a := range p.Addrs {
			b.WriteString(sep)
			b.WriteString("peer=")
			b.WriteString(escapeAddr(a.String() + suffix))
			sep = "&"
		}
	}
	return b.String()
}

func escapeAddr(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._:-~", r)) {
			return url.QueryEscape(s)
		}
	}
	return s
}

// Parse reads a link written by Link.String (or by hand). It checks
// everything it can without the network: the scheme, the broadcast ID
// (the broadcaster's peer ID must carry an ed25519 key), every peer
// address (a multiaddr ending in /p2p/<peer ID>), the sizes. Parameters
// other than peer are ignored, so that later versions can add some.
func Parse(s string) (Link, error) {
	var l Link
	if len(s) > MaxLen {
		return l, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(s), MaxLen)
	}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, Scheme) {
		return l, fmt.Errorf("%w: %q does not start with %s", ErrMalformed, clip(s), Scheme)
	}
	rest := s[len(Scheme):]
	id, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	id = strings.TrimSuffix(id, "/")
	if id == "" {
		return l, fmt.Errorf("%w: no broadcast ID after %s", ErrMalformed, Scheme)
	}
	if _, _, err := BroadcasterOf(id); err != nil {
		return l, err
	}
	l.Broadcast = id
	values, err := url.ParseQuery(query)
	if err != nil {
		return l, fmt.Errorf("%w: the part after '?': %v", ErrMalformed, err)
	}
	addrs := values["peer"]
	if len(addrs) == 0 {
		return l, fmt.Errorf("%w: no peer= to join through", ErrMalformed)
	}
	if len(addrs) > MaxPeers {
		return l, fmt.Errorf("%w: %d peer addresses, more than %d", ErrMalformed, len(addrs), MaxPeers)
	}
	index := map[peer.ID]int{}
	for _, text := range addrs {
		info, err := parsePeer(text)
		if err != nil {
			return Link{}, err
		}
		i, ok := index[info.ID]
		if !ok {
			i = len(l.Peers)
			index[info.ID] = i
			l.Peers = append(l.Peers, peer.AddrInfo{ID: info.ID})
		}
		if !slices.ContainsFunc(l.Peers[i].Addrs, info.Addrs[0].Equal) {
			l.Peers[i].Addrs = append(l.Peers[i].Addrs, info.Addrs[0])
		}
	}
	return l, nil
}

// parsePeer reads one peer= value: a multiaddr with an address, ending in
// /p2p/<peer ID>.
func parsePeer(text string) (*peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(text)
	if err != nil {
		return nil, fmt.Errorf("%w: peer=%q is not a multiaddr: %v", ErrMalformed, clip(text), err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return nil, fmt.Errorf("%w: peer=%q does not end in /p2p/<peer ID>", ErrMalformed, clip(text))
	}
	if len(info.Addrs) == 0 {
		return nil, fmt.Errorf("%w: peer=%q names a peer but no address to reach it", ErrMalformed, clip(text))
	}
	return info, nil
}

// ReachableFirst orders addresses for a link: public ones, then private
// (LAN) ones, then loopback, which only works on the machine itself.
func ReachableFirst(addrs []ma.Multiaddr) []ma.Multiaddr {
	rank := func(a ma.Multiaddr) int {
		switch {
		case manet.IsIPLoopback(a):
			return 2
		case manet.IsPublicAddr(a):
			return 0
		}
		return 1
	}
	out := slices.Clone(addrs)
	slices.SortStableFunc(out, func(a, b ma.Multiaddr) int { return rank(a) - rank(b) })
	return out
}
