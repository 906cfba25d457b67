package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

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
