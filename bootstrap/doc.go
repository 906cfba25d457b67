// Package bootstrap is the community service that `peerscope bootstrap`
// runs: the few things a swarm of phones and PCs needs from a well-known,
// reachable peer.
//
// Over libp2p (p2p.go, NewHost) it is a bootstrap peer, a DHT server, and
// a circuit relay for peers behind NAT. Over HTTP (Open → Service, Server)
// it offers sign-in — Twitter with OAuth 2.0 and PKCE (twitter.go; the
// provider side for tests is package xstandin), or a phone number
// (phone.go) — and in return signs identity attestations (package
// identity) that bind a peer ID to an account, a name and an avatar until
// an expiry. Nodes prove their peer ID by signing their requests with
// their libp2p key (signed.go) and believe the attestations of the key
// sets their bootstraps publish (keys.go, /api/v1/info).
//
// Broadcasters announce their broadcasts to its directory (directory.go),
// which lists what is live and what is replayable for 24 hours after the
// end, searchable; it keeps the follow graph and tells followers when
// someone goes live (events.go: server-sent events, and a hook for
// pubsub). Its state is one SQLite database (store.go, schema.go), with
// tables reserved for the audience lists and escrowed keys of private
// broadcasts. The directory page (page/) is served here and by any node.
//
// Data flow of a sign-in:
//
//	node ─signed POST start─► state{peer, PKCE verifier} ─► browser → X authorize
//	X ─redirect code,state─► callback: take state, exchange code+verifier,
//	users/me ─► account, session(peer), Attestation{peer}.Sign(key) ─► node fetches it
//
// The service never carries video: chunks flow peer to peer in the mesh.
package bootstrap
