package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// LinkScheme starts every link.
const LinkScheme = "peerscope://"

// Limits of a link, so that a pasted or hostile one costs little.
const (
	MaxLinkLen   = 4096 // bytes of the whole link
	MaxLinkPeers = 16   // peer= parameters
)

const (
	// maxNonceLen leaves room to lengthen the nonce later.
	maxNonceLen = 32
)

// base32 without padding, lower case: what a nonce is written in.
var nonceEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// A broadcast ID is "<broadcaster peer ID>.<nonce>": the broadcaster's
// libp2p peer ID in its base58 text form ("12D3KooW…", which inlines the
// ed25519 public key that signs the chunks) and a random nonce, so that
// two broadcasts by one identity are never confused (the chunks' signatures
// cover the ID: none of one broadcast can be replayed into another).

// newBroadcastID returns a fresh broadcast ID for a broadcaster.
func newBroadcastID(broadcaster peer.ID) string {
	var b [5]byte // 8 base32 characters, 40 bits
	_, _ = rand.Read(b[:])
	return broadcaster.String() + "." + nonceEncoding.EncodeToString(b[:])
}

// BroadcasterOf returns the peer ID of a broadcast's broadcaster and its
// public key, from the broadcast ID alone.
func BroadcasterOf(id string) (peer.ID, ed25519.PublicKey, error) {
	dot := strings.LastIndexByte(id, '.')
	if dot < 0 {
		return "", nil, fmt.Errorf("%w: broadcast ID %q has no '.' between the broadcaster and the nonce", ErrBadLink, clip(id))
	}
	pidText, nonce := id[:dot], id[dot+1:]
	if len(nonce) == 0 || len(nonce) > maxNonceLen || strings.Trim(nonce, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return "", nil, fmt.Errorf("%w: broadcast ID %q: the nonce must be 1 to %d lower-case letters and digits", ErrBadLink, clip(id), maxNonceLen)
	}
	pid, err := peer.Decode(pidText)
	if err != nil || pid.String() != pidText {
		return "", nil, fmt.Errorf("%w: broadcast ID %q: %q is not a peer ID", ErrBadLink, clip(id), clip(pidText))
	}
	key, err := p2p.PublicKey(p2p.MeshID(pid))
	if err != nil {
		return "", nil, fmt.Errorf("%w: broadcast ID %q: the broadcaster's peer ID holds no ed25519 key", ErrBadLink, clip(id))
	}
	return pid, key, nil
}

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
	b.WriteString(LinkScheme)
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

// ParseLink reads a link written by Link.String (or by hand). It checks
// everything it can without the network: the scheme, the broadcast ID
// (the broadcaster's peer ID must carry an ed25519 key), every peer
// address (a multiaddr ending in /p2p/<peer ID>), the sizes. Parameters
// other than peer are ignored, so that later versions can add some.
func ParseLink(s string) (Link, error) {
	var l Link
	if len(s) > MaxLinkLen {
		return l, fmt.Errorf("%w: %d bytes, more than %d", ErrBadLink, len(s), MaxLinkLen)
	}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, LinkScheme) {
		return l, fmt.Errorf("%w: %q does not start with %s", ErrBadLink, clip(s), LinkScheme)
	}
	rest := s[len(LinkScheme):]
	id, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	id = strings.TrimSuffix(id, "/")
	if id == "" {
		return l, fmt.Errorf("%w: no broadcast ID after %s", ErrBadLink, LinkScheme)
	}
	if _, _, err := BroadcasterOf(id); err != nil {
		return l, err
	}
	l.Broadcast = id
	values, err := url.ParseQuery(query)
	if err != nil {
		return l, fmt.Errorf("%w: the part after '?': %v", ErrBadLink, err)
	}
	addrs := values["peer"]
	if len(addrs) == 0 {
		return l, fmt.Errorf("%w: no peer= to join through", ErrBadLink)
	}
	if len(addrs) > MaxLinkPeers {
		return l, fmt.Errorf("%w: %d peer addresses, more than %d", ErrBadLink, len(addrs), MaxLinkPeers)
	}
	index := map[peer.ID]int{}
	for _, text := range addrs {
		a, err := ma.NewMultiaddr(text)
		if err != nil {
			return Link{}, fmt.Errorf("%w: peer=%q is not a multiaddr: %v", ErrBadLink, clip(text), err)
		}
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return Link{}, fmt.Errorf("%w: peer=%q does not end in /p2p/<peer ID>", ErrBadLink, clip(text))
		}
		if len(info.Addrs) == 0 {
			return Link{}, fmt.Errorf("%w: peer=%q names a peer but no address to reach it", ErrBadLink, clip(text))
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

// candidates returns the link's peers as mesh candidates.
func (l Link) candidates() []mesh.PeerInfo {
	out := make([]mesh.PeerInfo, 0, len(l.Peers))
	for _, p := range l.Peers {
		out = append(out, meshInfo(p))
	}
	return out
}

func meshInfo(p peer.AddrInfo) mesh.PeerInfo {
	mi := mesh.PeerInfo{ID: p2p.MeshID(p.ID)}
	for _, a := range p.Addrs {
		mi.Addrs = append(mi.Addrs, a.String())
	}
	return mi
}

// clip shortens what an error quotes.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
