package bootstrap

import (
	"context"
	"net/http"
	"net/url"

	"github.com/libp2p/go-libp2p/core/peer"
	webrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/mesh/p2p"
	webpeer "github.com/peerscope/peerscope/web/peer"
)

// WebLinkSlots is how many other browsers a page opened from a web link
// offers to feed unless it is on a metered network (the page then offers
// none) or its URL says otherwise (?slots=N). Two children cost a page
// two streams of upload (about 0.8 Mb/s at the demo's bitrate), which a
// home connection has to spare; it is what turns web viewers from a cost
// of the full nodes into peers.
const WebLinkSlots = 2

// The web link (issue 14): /w/<broadcast ID>/ plays a listed live
// broadcast in a plain browser, from the tree itself. The bootstrap is not
// in the broadcast's tree and carries no media: it serves the player page
// (media/player), the light node's script (web/peer) and, at api/peer,
// where to join — the WebTransport and WebRTC-direct addresses (with
// /certhash) of the peers the broadcaster's listed link names. The page
// dials one, is redirected down the tree like any joiner, verifies every
// chunk against the broadcaster's key (in the ID) and plays. A broadcast
// that is not listed, is private or has ended has no web link (404 at
// api/peer; the page says it cannot play, and offers the replay's link
// while the directory lists one).
func (s *Server) mountWebLink(m *http.ServeMux) {
	script := webpeer.Handler()
	m.HandleFunc("GET /w/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := api.BroadcasterOf(id); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/w/"+url.PathEscape(id)+"/", http.StatusMovedPermanently)
	})
	m.HandleFunc("/w/{id}/", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := api.BroadcasterOf(id); err != nil {
			s.fail(w, r, err)
			return
		}
		ctx := r.Context()
		page := player.New(player.Routes{
			Status:     func() player.Status { return s.webLinkStatus(ctx, id) },
			Peer:       func() (player.Peer, bool) { return s.webLinkPeer(ctx, id) },
			PeerScript: script,
		})
		// (A valid ID is base58 and base32: nothing in it is escaped.)
		http.StripPrefix("/w/"+id, page).ServeHTTP(w, r)
	})
}

// webLinkEntry returns the public listing of id, or nil.
func (s *Server) webLinkEntry(ctx context.Context, id string) *api.Listing {
	b, err := s.store.entry(ctx, id)
	if err != nil || b.Private {
		return nil
	}
	return &b.Listing
}

func (s *Server) webLinkStatus(ctx context.Context, id string) player.Status {
	l := s.webLinkEntry(ctx, id)
	if l == nil {
		return player.Status{Title: "Not in the directory", Ended: true}
	}
	st := player.Status{Title: l.Title, Viewers: l.Viewers, StartedAt: l.Started, Prefer: "p2p"}
	if l.Who != nil {
		st.Broadcaster = l.Who.Handle
		st.Who = &player.Person{Provider: l.Who.Provider, Account: l.Who.Subject, Handle: l.Who.Handle, Name: l.Who.Name, Avatar: l.Who.Avatar}
	} else {
		st.Anonymous = true
	}
	fresh := s.cfg.Now().Sub(l.Updated) <= s.cfg.LiveTTL
	st.Live = l.Live() && fresh
	st.Ended = !l.Live() || !fresh
	if !st.Ended {
		st.Link = l.Link // the page is the web link itself
	}
	if !l.Live() && l.Replay != "" && s.cfg.Now().Before(l.ReplayExpires) {
		// The replay lives on the peers: the page offers the link a node
		// plays it from (the broadcaster's keeps serving it).
		st.ReplayLink = l.Link
	}
	return st
}

// webLinkPeer answers api/peer: the listed link's peers a browser can dial.
func (s *Server) webLinkPeer(ctx context.Context, id string) (player.Peer, bool) {
	l := s.webLinkEntry(ctx, id)
	if l == nil || !l.Live() {
		return player.Peer{}, false
	}
	addrs := BrowserDialable(l.Link)
	if len(addrs) == 0 {
		return player.Peer{}, false
	}
	return player.Peer{Broadcast: id, Protocol: string(p2p.ProtocolID) + "/" + id, Addrs: addrs, Slots: WebLinkSlots}, true
}

// BrowserDialable returns the addresses in a peerscope:// link that a
// browser can dial — WebTransport or WebRTC-direct with a certificate
// hash, or a circuit through either to another browser — each ending
// in /p2p/<peer ID>, in the link's order; none for a link that does not
// parse.
func BrowserDialable(s string) []string {
	l, err := link.Parse(s)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range l.Peers {
		for _, a := range p.Addrs {
			if browserDialable(a) {
				s := a.String()
				// (A circuit's address names its relay with /p2p/ too: what
				// matters is whether it ends in the peer's own.)
				if _, id := peer.SplitAddr(a); id != p.ID {
					s += "/p2p/" + p.ID.String()
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// browserDialable says whether a browser can dial a: WebTransport or
// WebRTC-direct with a certificate hash (the browser checks it instead of
// a CA), or a circuit through either (node/browsers.go says the same).
func browserDialable(a ma.Multiaddr) bool {
	if ok, hashes := webtransport.IsWebtransportMultiaddr(a); ok && hashes > 0 {
		return true
	}
	ok, hashes := webrtc.IsWebRTCDirectMultiaddr(a)
	return ok && hashes > 0
}
