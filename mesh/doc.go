// Package mesh is the relay tree of a Peerscope broadcast as a pure state
// machine, in the manner of etcd's raft.
//
// A Machine holds one peer's view of one broadcast's tree: its parent, the
// ancestor path up to the broadcaster, its children and the window of recent
// chunks. It never reads the clock, opens a socket, starts a goroutine or
// draws global randomness. Its inputs are
//
//   - Step(now, from, msg): a message that arrived from a peer;
//   - Tick(now): time passed (timers, heartbeats, repair, improvement);
//   - Publish(now, chunk): the broadcaster's own chunks;
//   - AddCandidates and PeerDown: what the shell learnt about other peers.
//
// Its outputs collect in a Ready until the caller takes them: messages to
// send (chunks to forward are messages too), chunks to deliver to local
// sinks (verified, each sequence number once) and events for metrics.
//
// The same Machine runs inside the libp2p adapter (mesh/p2p), which turns
// streams into Step calls and a ticker into Tick calls, and inside the
// discrete-event simulator (mesh/sim), which drives tens of thousands of
// nodes over a modelled network in one thread.
//
// The tree, briefly: a joining node probes candidate members for RTT, ranks
// them by RTT, depth and free child slots and asks the best to adopt it. A
// full member redirects to descendants that reported room, shallowest first,
// or, if the joiner offers more child slots than one of its children, adopts
// the joiner and moves that child (with its subtree) under it, so capacity
// rises towards the root. The broadcaster's upload is kept for its children:
// joiners ask it only as a last resort, it redirects at most 200 a second and
// serves repair pulls only to its children. An Accept carries the ancestor path; a node never adopts one of
// its ancestors and leaves a parent whose path contains itself, so no loop
// can form. A node whose parent goes away (PeerDown, or silence beyond
// ParentTimeout) attaches to its grandparent or another known member, asking
// for chunks from the first sequence number it lacks, so the gap is filled
// before the player needs it. Periodically, and rate-limited, a node with
// spare slots tries to move nearer the root and any node may move to a
// clearly nearer parent with room; both moves are make-before-break.
//
// Each child's status to its parent also carries what the audience adds up:
// the hearts tapped in its subtree since its last status (a delta, so a child
// that changes parents counts nothing twice) and the viewers its subtree
// serves outside the tree (browsers, absolute like the subtree size). The
// broadcaster thus knows its audience and its hearts (Stats.Hearts,
// Status.Web) without a message from every viewer.
package mesh
