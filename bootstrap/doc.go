// Package bootstrap is the community service that `peerscope bootstrap`
// runs: the few things a swarm of phones and PCs needs from a well-known,
// reachable peer. What a node needs to talk to it is package bootstrap/api;
// the directory page both serve is package bootstrap/page.
//
// The Daemon (daemon.go) is the whole service, assembled by Run from a
// Config (DefaultConfig) and taken down in the reverse order:
//
//	Host (p2p.go): libp2p, a Kademlia DHT server, AutoNAT, a circuit relay sized for video
//	  └─ GossipSub ─► LivePublisher (live.go): go-live notices on api.LiveTopic
//	Service (service.go): keys (keys.go) + Store (SQLite: store.go, schema.go) + Server, listening
//	  └─ Server (server.go): the HTTP API under /api/v1/ and the directory page at /
//
// Over HTTP it offers sign-in — Twitter with OAuth 2.0 and PKCE (auth.go,
// twitter.go; the provider side for tests and local setups is package
// xstandin), or a phone number (phone.go) — and in return signs identity
// attestations (package identity) that bind a peer ID to an account, a
// name and an avatar until an expiry. Nodes prove their peer ID by signing
// their requests with their libp2p key (api.SignRequest; verified in
// signed.go, each nonce once) and believe the attestations of the key sets
// their bootstraps publish (keys.go, /api/v1/info). Every client is held
// to token buckets per address, peer and account (ratelimit.go, on
// golang.org/x/time/rate and the injected clock).
//
// Broadcasters list their broadcasts in its directory (directory.go): an
// api.ListingUpdate PUT by the broadcaster's node becomes an api.Listing,
// live, then replayable for 24 hours after the end, searchable (listings
// cached in listcache.go). It keeps the follow graph and tells followers
// when someone goes live (events.go: server-sent events, and OnLive, which
// the daemon hands to the LivePublisher). Its state is one SQLite database,
// with tables reserved for the audience lists and escrowed keys of private
// broadcasts.
//
// Data flow of a sign-in:
//
//	node ─signed POST start─► state{peer, PKCE verifier} ─► browser → X authorize
//	X ─redirect code,state─► callback: take state, exchange code+verifier,
//	users/me ─► account, session(peer), Attestation{peer}.Sign(key) ─► node fetches it
//
// The service never carries video: chunks flow peer to peer in the mesh.
package bootstrap
