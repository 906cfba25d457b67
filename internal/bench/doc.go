// Package bench measures the relay tree, GossipSub flooding and a plain star
// with real libp2p hosts in one process on loopback TCP, and fills the same
// report.Report as the simulator (mesh/sim), with the same definitions:
//
//   - Nodes counts every host, the broadcaster included: one broadcaster and
//     Nodes-1 viewers. (The simulator's Nodes counts viewers only.)
//   - Chunk 0 is an init chunk; media chunks follow every ChunkInterval, a
//     keyframe every KeyframeInterval, each of Bitrate×ChunkInterval/8 bytes,
//     signed with the broadcaster's host key.
//   - Viewers arrive evenly over ArrivalWindow and are measured from their own
//     join, with no separate warm-up: a viewer's playback starts at its first
//     chunk; due are the media chunks from there on whose deadline
//     (wallclock + Playout) falls while it is present, until the end of the
//     run or its death. continuity = due chunks held by their deadline ÷ due;
//     delivered_ratio = due chunks held at all ÷ due.
//   - latency = receipt − wallclock over every (viewer, media chunk) cut
//     after the viewer started: the live relay latency. The chunks a joiner
//     is given from the latest keyframe on (up to KeyframeInterval old, cut
//     before it asked) are its start-up, not the tree's delay: they are left
//     out of latency_ms and reported as extra.latency_all_* (every chunk
//     received) with their count in extra.latency_backfill_samples.
//   - Chunk bytes are the bytes of chunk messages (the signed chunk with its
//     framing), counted when a node writes them to a stream (star, tree) or
//     hands an RPC to GossipSub (SendRPC); control bytes are all the rest.
//     source_upload_ratio = the broadcaster's chunk bytes ÷ the stream's;
//     max_upload_ratio is the same for the busiest viewer present at least
//     half the run (30 s at most); overhead_ratio = control ÷ chunk bytes over
//     all nodes; duplicate_ratio = chunk bytes received again ÷ first copies.
//   - join_ms = a viewer's start → its first chunk; rejoin_ms = its parent's
//     host closed → attached again (tree only, null without churn).
//   - Churn F: from the end of the arrival window, viewers are killed (their
//     host closed, no Leave) at F × present viewers per minute, a Poisson
//     process, and as many new viewers start, each handed the broadcaster
//     and up to Candidates attached viewers, like an arrival.
//
// How data flows through a run (Run, one mode at a time; chat.go only with
// Config.Chat):
//
//	Config ─► validate ─► a loopback libp2p host per node (NewHost)
//	broadcaster: publishLoop ─► a signed chunk.Chunk every ChunkInterval ─► the mode's swarm:
//	             tree.go (a mesh/p2p Tree per host), gossip.go (one GossipSub topic),
//	             star.go (the broadcaster writes to every viewer)
//	viewers:     arrivals, then churn ─► delivered, received, attached ─► the run's counters
//	chat.go:     a chat.Room per host, joined to its tree through chat.TreeLink
//	             ─► comment latency, hearts in at the broadcaster, the count settling
//	finish ─► report.Report (runtime.go: the scheduler's own delays beside it)
//	       ─► cmd/peerscope bench prints it as a table or one JSON line
package bench
