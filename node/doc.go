// Package node is Peerscope's composition root: it builds one peer from the
// other packages and is the Go API that an application (or a gomobile
// binding) embeds. It holds no protocol of its own: it decides which parts
// a peer has and joins them.
//
// New starts, under one root context, the libp2p host (identity in
// Config.DataDir), the replay store with bitswap and the replay swarm, one
// GossipSub router for every broadcast's chat, NAT traversal through the
// community bootstraps (package nat), the node's community side (package
// community), the HTTP and HTTPS servers (the HTTPS one serves the go-live
// page and WHIP only) and a Prometheus registry of its own. Close undoes it in the order of ownership (see Close). Nothing is a
// singleton; cmd/peerscope only parses flags and runs a node; the one clock
// is Config.Clock.
//
// A chunk's path through a node, in the files that join the parts:
//
//	golive.go     GoLive(LiveConfig): a source, RTMP or WHIP publishers ─► media/publish
//	              ─► hooks: Record (replay.Recorder), Publish (the tree's root), Announce
//	              (announce: title, bitrate, the end — after the replay is sealed)
//	watch.go      Watch(link.Link): the announcement from the link's peers (announce.Fetch),
//	              slots sized by its bitrate, then the tree (mesh/p2p, one protocol ID per broadcast)
//	broadcast.go  the tree delivers ─► Broadcast.deliver ─► the owner goroutine (run): the
//	              players (media/hls, media/whep; the page at /b/<ID>/), the newest
//	              announcement, the end; and a bounded queue to the replay store
//	replay.go     the store, bitswap and replay/swarm: at the end the broadcaster seals the
//	              manifest and a viewer awaits it; Replay(link) plays one at /r/<ID>/
//	http.go       the routes; metrics.go, /metrics; webcount.go, the browsers it serves,
//	              counted by client (an address, at most four each)
//
// Who may drive the web servers is internal/localapi's (node.go wires it):
// every request's Host and Origin are the node's own, what acts in the
// node's name (the chat's posts, /directory/api/node/…) is JSON from this
// machine with the page token the node writes into the pages it serves
// there (APIToken), and every answer carries the security headers;
// internal/httpserve bounds what a client costs (timeouts, body size,
// event streams per client).
//
// Each Broadcast's state has one owner goroutine; the publisher's hooks,
// the announcement fetches and the HTTP handlers reach it through an
// internal/owner inbox, and the tree's goroutine only queues chunks. A
// broadcaster lists its broadcast and then its replay in its community
// bootstrap's directory (directory.go: the wiring of package community).
//
// Each broadcast also joins its chat.Room (the broadcaster's room counts the
// tree's size as its audience; every room counts the browsers its node
// serves). The page's chat is chat/web's, mounted at /b/<ID>/chat/ with two
// hooks (chat.go: the room, and isOwner); one goroutine per broadcast runs
// its Run, which drains the room's events to the page's server-sent event
// stream at /b/<ID>/chat/events; the page posts comments (placed at the
// frame on screen), hearts, reports and votes to chat/, with the page
// token. Moderation (chat/moderate) is the local owner's only: a request
// from this machine with OwnerToken or the stream key too. Rooms close
// before the router and the host.
package node
