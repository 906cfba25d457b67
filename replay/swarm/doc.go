// Package swarm is a node's side of the replays that its peers hold: how a
// replay is found, fetched and played once its broadcast is over, with
// nothing needed from the broadcaster.
//
// A Swarm answers Protocols (Serve; 1.2.0, and 1.1.0 for older nodes):
// the signed manifest of a replay it holds, the holders it knows (its
// neighbours in the broadcast, then peers that proved they hold it), and
// replay views — counted only when the viewer proves it holds every chunk
// (a Merkle commitment to a tag per chunk, 16 of them checked), once per
// peer, or per account when it is signed in (views.go). Around it:
//
//	broadcaster, at the end: replay.Recorder ─► Manifest ─► Sign ─► Keep (memory + store)
//	viewer, at the end:      Await ─► ask the broadcaster, the parent, the link ─► Keep
//	                                 └─► Complete: Open (not a view) to fetch what it missed
//	replay viewer:           Open(link) ─► manifest from any holder (+ the holders they name)
//	                         ─► connect them ─► bitswap, 64 chunks a window, in order
//	                         ─► CID + signature + manifest entry ─► store (or memory)
//	                         ─► hls.VOD ─► Config.Page (the node's /r/<ID>/)
//	                         └─► every chunk here ─► a proven view to the broadcaster and the holders
//
// A window of chunks that no connected peer gives in 10 s is left for a
// retry every 30 s, so the rest still comes; a part the page asks for ahead
// of the prefetch is fetched at once. Every read checks expiry (the
// manifest's end + TTL, by Config.Clock; the end is anchored as the
// manifest comes: never later than then, nor than the store's record).
//
// The chunks travel by bitswap (Config.Blocks; the node runs one instance,
// serving its replay.Store). The protocol's messages are proto/replay.proto's,
// on the generated code in proto/replaypb.
package swarm
