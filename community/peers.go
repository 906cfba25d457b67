package community

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// infoTimeout bounds the fetch of a bootstrap's /api/v1/info.
const infoTimeout = 5 * time.Second

// PeersFromInfo asks each bootstrap's HTTP API (/api/v1/info) for its
// libp2p peer ID and addresses, so that a node given only bootstrap URLs
// finds the bootstraps' libp2p side too (for NAT traversal). A bootstrap
// that does not answer within 5 s is left out, and logged.
func PeersFromInfo(ctx context.Context, urls []string, log *slog.Logger) []peer.AddrInfo {
	var addrs []string
	hc := &http.Client{Timeout: infoTimeout}
	for _, u := range urls {
		base, pin, err := api.ParseBootstrapURL(u)
		if err != nil {
			log.Warn("bootstrap URL refused: no NAT traversal through it", "bootstrap", u, "err", err)
			continue
		}
		info, err := (&api.Client{Base: base, Pin: pin, HTTP: hc}).Info(ctx)
		if err != nil {
			log.Warn("bootstrap info not fetched: no NAT traversal through it", "bootstrap", u, "err", err)
			continue
		}
		id, err := peer.Decode(info.PeerID)
		if err != nil {
			log.Warn("bootstrap info names no libp2p peer", "bootstrap", u, "peer_id", clip(info.PeerID))
			continue
		}
		suffix := "/p2p/" + id.String()
		for _, a := range info.Addrs {
			if !strings.Contains(a, "/p2p/") {
				a += suffix
			}
			addrs = append(addrs, a)
		}
	}
	peers, err := ParseBootstrapPeers(addrs)
	if err != nil {
		log.Warn("bootstrap info: bad addresses", "err", err)
		return nil
	}
	return peers
}

// ParseBootstrapPeers reads bootstrap peers from multiaddrs ending in
// /p2p/<peer ID>, merging the addresses of a peer named more than once.
func ParseBootstrapPeers(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bootstrap peer %q: %w", ErrConfig, clip(s), err)
		}
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil || len(info.Addrs) == 0 {
			return nil, fmt.Errorf("%w: bootstrap peer %q: want an address ending in /p2p/<peer ID>", ErrConfig, clip(s))
		}
		if i := slices.IndexFunc(out, func(p peer.AddrInfo) bool { return p.ID == info.ID }); i >= 0 {
			out[i].Addrs = append(out[i].Addrs, info.Addrs...)
			continue
		}
		out = append(out, *info)
	}
	return out, nil
}

// clip shortens what a log line or an error quotes.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
