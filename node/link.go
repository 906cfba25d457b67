package node

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// Link returns a link to share: this node first (it relays, or redirects
// to its children), then the peers this node joined through (those first
// when this node relays to nobody).
func (b *Broadcast) Link() link.Link {
	self := peer.AddrInfo{ID: b.n.host.ID(), Addrs: link.ReachableFirst(b.n.host.Addrs())}
	var l link.Link
	l.Broadcast = b.id
	if b.slots > 0 || b.root {
		l.Peers = append(l.Peers, self)
	}
	for _, p := range b.link.Peers {
		if p.ID != self.ID && len(l.Peers) < 4 {
			l.Peers = append(l.Peers, p)
		}
	}
	if b.slots == 0 && !b.root {
		// It relays to nobody: a joiner should try the others first.
		l.Peers = append(l.Peers, self)
	}
	// Keep within link.MaxPeers addresses in all.
	total := 0
	for i := range l.Peers {
		room := link.MaxPeers - total
		if len(l.Peers[i].Addrs) > room {
			l.Peers[i].Addrs = l.Peers[i].Addrs[:room]
		}
		total += len(l.Peers[i].Addrs)
	}
	for len(l.Peers) > 0 && len(l.Peers[len(l.Peers)-1].Addrs) == 0 {
		l.Peers = l.Peers[:len(l.Peers)-1]
	}
	return l
}

// BroadcastURLs are where this node serves a broadcast, and where its
// publishers go.
type BroadcastURLs struct {
	Path   string // the player page's path on the node's web server ("/b/<ID>/")
	Player string // the player page on this machine
	HLS    string // the LL-HLS playlist (VLC, ffplay, hls.js)
	WHEP   string // WebRTC playback
	Status string // the JSON status the player page reads

	// The broadcaster's ("" on a viewer, or without that ingest):
	RTMP string // what an encoder on this machine publishes to, key included
	// WHIP is the endpoint publishers post to, with
	// "Authorization: Bearer KEY".
	WHIP string
	// BroadcasterPage is the page to go live from in a browser, the key in
	// its fragment; on the HTTPS server (what a phone needs for its camera)
	// when there is one.
	BroadcasterPage string
	// BroadcasterPagesLAN is the same page at every address a phone on
	// the machine's networks may use (Node.HTTPSLANURLs), the likeliest
	// first; none when the HTTPS server listens on one address only.
	BroadcasterPagesLAN []string
}

// URLs returns where this node serves the broadcast and takes its
// publishers.
func (b *Broadcast) URLs() BroadcastURLs {
	u := BroadcastURLs{Path: b.playerPath()}
	u.Player = b.n.HTTPURL() + u.Path
	u.HLS, u.WHEP, u.Status = u.Player+"hls/index.m3u8", u.Player+"whep", u.Player+"api/status"
	if b.pub == nil {
		return u
	}
	if a := b.pub.RTMPAddr(); a != nil {
		u.RTMP = "rtmp://" + localHostPort(a, false) + "/live/" + b.streamKey
	}
	if b.takesWHIP {
		u.WHIP = b.n.secureURL() + "/broadcast/whip"
		frag := url.Values{"key": {b.streamKey}}
		if t := b.Announcement().Title; t != "" {
			frag.Set("title", t)
		}
		u.BroadcasterPage = b.n.secureURL() + "/broadcast/#" + frag.Encode()
		for _, base := range b.n.HTTPSLANURLs() {
			u.BroadcasterPagesLAN = append(u.BroadcasterPagesLAN, base+"/broadcast/#"+frag.Encode())
		}
	}
	return u
}

// playerPath is the path of the broadcast's player page ("/b/<ID>/").
func (b *Broadcast) playerPath() string { return "/b/" + b.id + "/" }

// StreamKey returns the key publishers give ("" on a viewer).
func (b *Broadcast) StreamKey() string { return b.streamKey }

// candidates returns a link's peers as mesh candidates.
func candidates(l link.Link) []mesh.PeerInfo {
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

// maxEntries is how many members with room a directory listing names
// besides the broadcaster.
const maxEntries = 3

// entryLink is the link the directory lists: Link, then up to maxEntries
// members of the tree with free slots that a browser can dial (their
// WebTransport and WebRTC-direct addresses), as the broadcaster would
// redirect a joiner to them now. A web link's page (bootstrap's api/peer)
// asks them at once and enters the tree there: one handshake and one
// redirect fewer, and the broadcaster's upload and CPU are not spent on
// every page that opens. The listing is refreshed every
// DirectoryInterval, so the room it names may be a little stale; a member
// that has filled up redirects.
func (b *Broadcast) entryLink() link.Link {
	l := b.Link()
	if b.tree == nil {
		return l
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	st, _, err := b.tree.Status(ctx)
	if err != nil {
		return l
	}
	total := 0
	for _, p := range l.Peers {
		total += len(p.Addrs)
	}
	added := 0
	for _, r := range st.Room {
		if added == maxEntries {
			break
		}
		id, err := peer.Decode(string(r.ID))
		if err != nil || slices.ContainsFunc(l.Peers, func(p peer.AddrInfo) bool { return p.ID == id }) {
			continue
		}
		var addrs []ma.Multiaddr
		for _, s := range r.Addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				continue
			}
			if t, _ := peer.SplitAddr(a); t != nil {
				a = t // (the link names the peer once)
			}
			// A full node's WebTransport or WebRTC-direct address, or a
			// page's: a circuit through a node's, ending in /webrtc (the
			// page races its entries, so one slow browser set-up costs it
			// nothing).
			if browserDialable(a) {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 || total+len(addrs) > link.MaxPeers {
			continue
		}
		total += len(addrs)
		l.Peers = append(l.Peers, peer.AddrInfo{ID: id, Addrs: addrs})
		added++
	}
	return l
}
