// Package bootstrap is the community service that `peerscope bootstrap`
// runs: the few things a swarm of phones and PCs needs from a well-known,
// reachable peer.
//
// Over libp2p it is a bootstrap peer, a DHT server, and a circuit relay for
// peers behind NAT. Over HTTP it offers sign-in (Twitter with OAuth 2.0 and
// PKCE, or a phone number), and in return signs identity attestations that
// bind a peer ID to an account, a name and an avatar until an expiry; nodes
// trust attestations signed by the bootstrap keys they are configured with.
// Broadcasters register their broadcasts in its directory, which lists what
// is live and what is replayable (dropping replays after 24 hours), keeps the
// follow graph, and holds the audience lists and escrowed keys of private
// broadcasts, releasing a key only to an authenticated identity on the list.
// Its state lives in an embedded SQLite database by default.
//
// The service never carries video: chunks flow peer to peer in the mesh.
package bootstrap
