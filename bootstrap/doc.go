// Package bootstrap is the community service that `peerscope bootstrap`
// runs: the few things a swarm of phones and PCs needs from a well-known,
// reachable peer. What a node needs to talk to it is package bootstrap/api;
// the directory page both serve is package bootstrap/page.
//
// The Daemon (daemon.go) is the whole service, assembled by Run from a
// Config (DefaultConfig) and taken down in the reverse order:
//
//	Host (p2p.go): libp2p, a Kademlia DHT server, AutoNAT, a circuit relay sized for video,
//	  its reservations for peers signed in here, a few per network (relay_acl.go)
//	  └─ GossipSub ─► LivePublisher (live.go): go-live notices on api.LiveTopic,
//	     reminders of scheduled broadcasts on api.ReminderTopic
//	Service (service.go): keys (keys.go) + Store (SQLite or PostgreSQL: store*.go, schema.go, dialect.go) + Server, listening,
//	  pruning (prune.go), sending the reminders due (schedule.go)
//	  └─ Server (server.go): the HTTP API under /api/v1/ and the directory page at /
//	     └─ /w/<ID>/ (weblink.go): a listed live broadcast's web link, the player page whose
//	        light node joins the tree at the listing's WebRTC-direct addresses
//
// Over HTTP it offers sign-in — Twitter with OAuth 2.0 and PKCE, redeemed by
// the node that started it (signin.go, twitter.go; the provider side for
// tests and local setups is package xstandin), or a phone number
// (phone_handlers.go, store_phone.go) — and in return signs identity
// attestations (package identity) that bind a peer ID to an account, a
// name and an avatar until an expiry (30 days at most). It withdraws them
// before then on a sign-out, an ended session or the operator's word
// (revoke.go, --revoke-…), and publishes its attestation keys and its
// revocations in a trust statement signed by its identity key (trust.go;
// keys.go also rotates and revokes keys). Nodes prove their peer ID by
// signing their requests with their libp2p key, for this bootstrap by its
// ID (api.SignRequest; verified in signed.go: the peer's rate, then each
// nonce once, kept durably by time bucket in nonces.go). Every client is
// held to token buckets per address (an IPv6 address by its /64), peer and
// account (ratelimit.go, on golang.org/x/time/rate and the injected
// clock). Provider tokens are sealed at rest (sealed.go).
//
// Broadcasters list their broadcasts in its directory (directory.go): an
// api.ListingUpdate PUT by the broadcaster's node becomes an api.Listing,
// live, then replayable for 24 hours after the end, searchable (listings
// cached in listcache.go), capped per account and, anonymous, per network.
// It keeps the follow graph and tells followers when someone goes live
// (events.go: server-sent events without the followers, and OnLive, which
// the daemon hands to the LivePublisher; on PostgreSQL, replicas.go carries
// every event to the other replicas with LISTEN/NOTIFY). Broadcasters schedule broadcasts
// ahead (schedule.go, store_schedule.go, behind the scheduleStore
// interface): listed as upcoming, with reminders to their followers at the
// steps they chose (taken on the injected clock, each once, never late),
// and questions asked in advance, up-voted once per account, which the
// broadcaster reads ranked while live. For private broadcasts it keeps
// the private-audience keys (audience.go, mailbox.go, store_audience.go):
// member devices' keys, attested to their accounts and served to anyone;
// each broadcast's roster, whose version only grows; and a mailbox of
// bundles, epoch secrets the broadcaster wrapped for each member device,
// handed only to devices of the newest roster. All of it is signed by
// others and kept as their bytes; it never holds a content key. Its state
// is one database: SQLite by default, or PostgreSQL (--db postgres://…;
// dialect.go bridges the two).
//
// Data flow of a sign-in:
//
//	node ─signed POST start {return}─► state{peer, PKCE verifier, return} ─► browser → X authorize
//	X ─redirect code,state─► callback: take state, exchange code+verifier, users/me ─► account, tokens (sealed)
//	  ─► one-time code bound to the state's peer ─► the browser: #signin=CODE at return (loopback), or shown
//	node's page ─► node ─signed POST finish {code}─► same peer? ─► session, Attestation{peer}.Sign(key)
//
// The service never carries video but what its relay passes for peers
// behind NAT: chunks flow peer to peer in the mesh.
package bootstrap
