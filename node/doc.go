// Package node is Peerscope's composition root: it builds one peer from the
// other packages and is the Go API that an application (or a gomobile
// binding) embeds.
//
// A node owns a libp2p host and wires onto it a mesh tree per broadcast it
// takes part in (through the libp2p adapter in mesh/p2p), the chat topic of
// each broadcast (chat), the media side (media) and the replay store. Data
// flows through it in one direction: on a broadcaster, media ingests the
// camera or encoder, cuts and signs chunks, and the node publishes them into
// the mesh as the tree's root; on a viewer, the mesh delivers verified chunks
// in sequence order and the node fans them out to the local sinks — the
// LL-HLS muxer and WHEP packetizer that serve the local web page and players,
// and the replay store, which keeps them for 24 hours and serves them to
// replay viewers. Comments, hearts and presence go the other way, from the
// local API to chat. The node also serves the local web UI and HTTP API and
// talks to a community bootstrap service for identity, discovery and the
// keys of private broadcasts.
//
// Nothing here is a singleton: every part is built from the node's Config
// and closed by Close; cmd/peerscope only parses flags and runs a node.
//
// What is built so far: New
// starts the host (identity in Config.DataDir), one GossipSub router for
// every broadcast's chat, the HTTP and HTTPS servers and a Prometheus
// registry of its own. Node.Broadcast roots a
// broadcast:
//
//	Source (file, TS, UDP, SRT) or a publisher (RTMP, WHIP; one at a time)
//	  ─► cmaf.Packager ─► init and parts ─► chunks (Seq, Wallclock, Duration,
//	     FlagInit / FlagKeyframe / FlagEnd), signed with the host key ─► p2p.Node (root)
//
// and Node.Watch joins one through a Link. On both, every chunk the tree
// delivers goes to the broadcast's hls.Server and whep.Server, which the
// player page at /b/<broadcast ID>/ plays from. The title and the end travel
// in a signed Announcement over AnnounceProtocol, which the broadcaster and
// every viewer answer. Each broadcast's tree speaks its own protocol ID
// (mesh/p2p's ProtocolID + "/" + the broadcast ID), so one host can be in
// several trees.
//
// Each broadcast also joins its chat.Room (the broadcaster's room counts the
// tree's size as its audience; every room counts the browsers its node
// serves). The page's chat is chat/web's, mounted at /b/<ID>/chat/ with two
// hooks (chat.go: the room, and isOwner); one goroutine per broadcast runs
// its Run, which drains the room's events to the page's server-sent event
// stream at /b/<ID>/chat/events; the page posts comments (placed at the
// frame on screen), hearts, reports and votes to chat/. Moderation
// (chat/moderate) is the local owner's only: a request from loopback with
// OwnerToken or the stream key. Rooms close before the router and the host.
//
// Replays (replay*.go): every delivered chunk also goes, through a bounded
// queue, to the node's replay.Store (DataDir/replay; Config.NoReplays opts
// out), whose sweeper deletes what is 24 hours past its broadcast's end.
// The broadcaster signs a replay.Manifest as the broadcast ends; viewers
// fetch it over ReplayProtocol when they see the end. Node.Replay opens a
// replay from a link: the manifest from any holder, the chunks by bitswap
// (one instance per node, serving the store) from every holder it can
// reach, each checked against the manifest, served as HLS VOD at
// /r/<ID>/ with the comments on its timeline. Replay views are counted by
// the broadcaster and published, with the replay, to the directory.
package node
