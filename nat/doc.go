// Package nat is how a Peerscope node gets through NAT, with its community
// bootstraps' help (see docs/ARCHITECTURE.md, "Through NAT"):
//
//   - It keeps a connection to each of its bootstrap peers (Config.Bootstraps,
//     redialled every Config.Redial). Identify on that connection tells it the
//     address its NAT maps it to; AutoNAT asks the bootstrap to dial it back
//     there, which says whether it is reachable (Traversal.Reachability).
//   - Found unreachable, it reserves a slot on the bootstraps' circuit relays
//     (AutoRelay with the bootstraps as static relays) and advertises
//     /p2p-circuit addresses through them (RelayAddrs): in its links and in
//     what it tells the tree.
//   - A peer that reaches it through a relay gets a "limited" connection;
//     both then try to punch a hole through their NATs (DCUtR), and the
//     tree's streams move to the direct connection when that works (PathTo
//     says which a peer has); a relayed connection left with nothing but
//     GossipSub on it is then closed. Otherwise the video stays on the relay.
//
// The node passes Options to libp2p.New, then Start, which waits (at most
// Config.Wait) until the host is ready to meet peers behind NAT, since the
// addresses a node starts a tree with are the ones the tree passes on.
package nat
