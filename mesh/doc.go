// Package mesh is the relay tree of a Peerscope broadcast as a pure state
// machine, in the manner of etcd's raft.
//
// A Machine holds one peer's view of one broadcast's tree: its parent, the
// ancestor path up to the broadcaster, its children and the window of recent
// chunks. It never reads the clock, opens a socket, starts a goroutine or
// draws global randomness. Its inputs are
//
//   - New(Config): who it is, the broadcaster, the key, its child slots, the
//     timings, the counters, a seeded *rand.Rand;
//   - Step(now, from, msg): a message that arrived from a peer;
//   - Tick(now): time passed (timers, heartbeats, repair, improvement);
//   - Publish(now, chunk): the broadcaster's own chunks;
//   - AddCandidates, PeerDown and Leave: what the shell learnt about other
//     peers, and that this one goes;
//   - Count and SetGauge: what the application adds up through the tree.
//
// Its outputs collect in a Ready until the caller takes them: messages to
// send (chunks to forward are messages too), chunks to deliver to local
// sinks (verified, each sequence number once) and events for metrics.
// NextTick says when Tick next has anything to do.
//
// The same Machine runs inside the libp2p shell (mesh/p2p), which turns
// streams into Step calls and a ticker into Tick calls, and inside the
// discrete-event simulator (mesh/sim), which drives tens of thousands of
// machines over a modelled network in one thread.
//
// Where things are: machine.go has the Machine, its inputs and the dispatch
// of Step; chunks.go the window (verify, keep, deliver, forward, backfill,
// pull, repair); children.go the slots and the answer to an attach;
// status.go the status a child sends its parent; counters.go what the tree
// adds up; join.go probing, attaching, redirects, the ancestor path and
// losing a parent; rejoin.go how a node that lost one finds another;
// improve.go the moves towards the root. message.go is the
// protocol's one message, codec.go its wire encoding (the schema is
// proto/mesh.proto).
//
// The tree, briefly: a joining node probes candidate members for RTT, ranks
// them by RTT, depth and free child slots and asks the best to adopt it. A
// full member redirects to descendants that reported room, shallowest first,
// or, if the joiner offers more child slots than one of its children, adopts
// the joiner and moves that child (with its subtree) under it, so capacity
// rises towards the root. The broadcaster's upload is kept for its children:
// joiners ask it only as a last resort, it redirects at most 200 a second and
// serves repair pulls only to its children. An Accept carries the ancestor
// path; a node never adopts one of its ancestors and leaves a parent whose
// path contains itself, so no loop can form. A node whose parent goes away
// (PeerDown, or silence beyond ParentTimeout) pings its ancestors and the
// other members it knows all at once and attaches to the first that answers
// from the tree with room (rejoin.go: after a mass failure many are dead,
// and they must not be waited for one by one), asking for the newest of the
// chunks it lacks, so the gap is filled before the player needs it. Periodically, and
// rate-limited, a node with spare slots tries to move nearer the root and any
// node may move to a clearly nearer parent with room; both moves are
// make-before-break.
//
// Each child's status to its parent also carries the application's counters
// (Config.Counters), named and opaque to the tree: an events counter goes up
// as the delta counted in the sender's subtree since its last status to that
// parent (so a child that changes parents counts nothing twice), a gauge as
// its subtree's sum (like the subtree size), each clamped to MaxPerNode per
// node of the subtree if set. The broadcaster's Status().Counters are thus
// the whole audience's without a message from every viewer. (Chat puts its
// hearts and web viewers there: chat.TreeCounters.)
//
// The scenario tests are scripts in testdata/scenarios: inputs to a network
// of machines and the outputs they gave (go test -run TestScenarios
// -rewrite writes the outputs anew).
package mesh
