// Package p2p runs a mesh.Machine over libp2p: a Tree is this host's part in
// one broadcast's relay tree, the thin shell around the pure state machine.
//
// One owner goroutine holds the mesh.Machine. It waits for an input (a
// message read from a peer, a tick, a chunk to publish, a call from another
// goroutine through its internal/owner inbox — AddCandidates, Status —, a
// peer that went away, counts and gauges for the tree's counters), hands it
// to the machine, then drains the machine's Ready:
//
//   - each Envelope goes to a per-peer writer: one outbound stream per peer
//     speaking ProtocolID (/peerscope/mesh/1.2.0, or the WithProtocol ID),
//     opened lazily (the envelope's addresses are added to the peerstore
//     first), fed through a bounded queue. A peer whose writer has taken
//     nothing for WithQueueDelay, or whose queue passes WithQueueBytes, is
//     dropped (its stream reset, PeerDown given to the machine), so a slow
//     child never blocks the owner or its siblings;
//   - each delivered chunk goes to the WithDeliver callback and each event to
//     the WithEvents callback, both on the owner goroutine.
//
// A ticker (WithTickInterval, from the WithClock clock: an internal/clock
// Clock, the system's by default) drives Tick; before each Tick the owner
// steps every message already waiting, so that a node short of CPU does not
// take a parent whose heartbeat sits in the inbox for silent. The shell also
// times the machine's pongs into the peerstore (LatencyEWMA), so the RTTs
// the tree probed are visible to the application.
//
// Count and SetGauge never block: they note the value and wake the owner,
// which hands it to the machine; the statuses carry the counters up, and
// the broadcaster's Status().Counters has the totals.
//
// Every inbound stream joins the host's resource-manager service for the
// tree (internal/p2plimit: a cap on each peer's streams across every
// broadcast, and a memory budget); past that a peer holds at most four
// streams on one tree, and more are reset. Its reader decodes
// length-delimited frames (at most mesh.MaxFrameSize each): a frame is
// charged to the stream's scope from its length prefix until it is
// decoded, its buffer grows as the bytes arrive, and a chunk message that
// carried much more than its chunk (padding in an unknown field) has the
// chunk copied out, so the padding is not kept with it. The messages go to
// the owner. A stream that fails, a writer that fails and a connection that
// closes all become PeerDown.
//
// Identities: a mesh.PeerID is the base58 text form of the libp2p peer.ID
// (peer.ID.String(), "12D3KooW…"), not its raw bytes, so it is valid UTF-8
// in the protobuf string fields, readable in logs, and the ed25519 public key
// of an Ed25519 identity can be recovered from it (PublicKey). The
// broadcaster signs chunks with its host key (HostSigner).
package p2p
