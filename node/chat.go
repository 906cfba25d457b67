package node

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/internal/localapi"
)

// joinChat joins the broadcast's chat room on the node's GossipSub router.
// Chat is not what a viewer came for: a room that fails leaves the video
// playing, and the page without chat.
func (b *Broadcast) joinChat() {
	cfg := chat.Config{
		Broadcast:   b.id,
		Broadcaster: b.rootID,
		Logger:      b.log,
		// Identity: this node's attestation (the one fetched from its
		// bootstrap, or Config.Attestation), and the keys to believe
		// others' (Config.TrustedKeys, and the bootstraps' key sets with
		// their validity windows and revocations), both followed while
		// the room runs.
		Attestation:       b.n.Attestation(),
		Trusted:           b.n.cfg.TrustedKeys,
		Trust:             b.n.Trust(),
		TrustSource:       b.n.Trust,
		AttestationSource: b.n.Attestation,
	}
	// Taps go up the tree with its statuses; the broadcaster's room reads
	// the audience, browsers and hearts from the tree's sums.
	b.treeLink.Configure(&cfg)
	if b.ring != nil {
		// A private broadcast's room: its own topic, every message
		// sealed, members only (privchat.go). Never the public topic.
		s, err := b.chatSealing()
		if err != nil {
			b.log.Warn("no chat for this private broadcast", "err", err)
			return
		}
		cfg.Private = s
		b.n.private.set(chat.PrivateTopicPrefix+s.Topic, b.gate.member)
	}
	room, err := chat.Join(b.ctx, b.n.ps, b.n.host, cfg)
	if err != nil {
		b.log.Warn("no chat for this broadcast", "err", err)
		return
	}
	b.room = room
	b.wg.Go(b.fanOutChat)
}

// webViewers counts the browsers this node serves, by client (webcount.go).
// It runs on the room's goroutine: it reads counters only.
func (b *Broadcast) webViewers() int {
	return b.hlsClients.count(b.n.clock.Now(), b.whep.Clients())
}

// fanOutChat runs the chat page's event streams (chat/web) until the room
// is closed; when a browser comes or goes (chat.Wake, from the LL-HLS and
// WHEP handlers), when one stops counting (webClients.expiry), and before
// the streams hear the live count, it tells the tree how many browsers this
// node serves. The broadcaster's keeps the tree's sums at hand for its room
// every web.DefaultEvery: they change without telling it.
func (b *Broadcast) fanOutChat() {
	b.chat.Run(b.ctx, func(now time.Time) time.Time {
		b.reportWeb()
		b.refreshCounts()
		if b.root {
			return now.Add(web.DefaultEvery)
		}
		return b.hlsClients.expiry()
	})
}

// reportWeb tells the tree how many browsers this node serves.
func (b *Broadcast) reportWeb() { b.treeLink.ReportBrowsers(b.webViewers()) }

// refreshCounts reads the broadcaster's tree's sums for its room (asking
// the tree from the room's goroutine would make it wait on another).
func (b *Broadcast) refreshCounts() {
	if !b.root {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	_ = b.treeLink.Refresh(ctx)
}

// OwnerToken returns the token that makes a local request the
// broadcaster's owner's: moderation, and the viewer list. The page takes it
// in its URL fragment (OwnerURL); a request gives it as "Authorization:
// Bearer TOKEN" (or ?owner=TOKEN for the event stream) and must come from
// this machine. Moderation is posted like the rest, with the page token
// too (APIToken).
func (n *Node) OwnerToken() string { return n.owner }

// OwnerURL returns the player page as the node's owner opens it: with the
// owner token in the fragment, so the page shows moderation.
func (b *Broadcast) OwnerURL() string { return b.URLs().Player + "#owner=" + b.n.owner }

// isOwner tells whether a request is the local owner's: from this machine,
// with the node's owner token or the broadcast's stream key (compared in
// constant time); or the go-live page's, which its stream key opened
// (studio.go, from wherever the phone is).
func (b *Broadcast) isOwner(r *http.Request) bool {
	if b.openedByStudio(r) {
		return true
	}
	if !localapi.FromThisMachine(r) {
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.URL.Query().Get("owner")
	}
	if tok == "" {
		return false
	}
	return localapi.Equal(tok, b.n.owner) || (b.pub != nil && localapi.Equal(tok, b.streamKey))
}

// chatWeb returns the chat's HTTP API and event streams for the player's
// chat/ route: over the room joinChat joins (none before, or when it
// failed), with the owner's requests told apart by isOwner.
func (b *Broadcast) chatWeb() *web.Server {
	return web.New(web.Config{
		Room:    func() *chat.Room { return b.room },
		IsOwner: b.isOwner,
		Streams: b.n.chatStreams,
		Clock:   b.n.clock, // webViewers' and expiry's times
	})
}

// ChatViewers returns who watches as this node's chat room sees them: on
// the broadcaster's node, the live count and the viewers identified by an
// attestation this node believes. ErrNoChat when the broadcast has no
// room.
func (b *Broadcast) ChatViewers(ctx context.Context) (chat.Viewers, error) {
	if b.room == nil {
		return chat.Viewers{}, ErrNoChat
	}
	return b.room.Viewers(ctx)
}
