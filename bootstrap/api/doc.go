// Package api is what a node needs to talk to a community bootstrap, and
// nothing of the server: the Client, the signing of requests with the
// node's libp2p key, the JSON bodies of the HTTP API (/api/v1/…), the
// errors it answers, and the go-live notices published on LiveTopic. It
// links neither SQLite nor the DHT nor the relay, so every node can import
// it; the bootstrap (package bootstrap) builds its answers from the same
// types and verifies signatures over the same RequestPayload.
//
// A bootstrap is named by the fingerprint of its identity key
// (Fingerprint): GET /api/v1/info gives it with a TrustStatement (the
// attestation keys and the revocations) signed by that key, which the
// Client checks (OpenTrust) against the key, and against the node's pin
// when it has one (ParseBootstrapURL: https, or http with #pin=, or
// loopback). A signed call, from the node to the bootstrap:
//
//	Client.do ─► ID (from /api/v1/info, once) ─► JSON body
//	          ─► SignRequest(key, bootstrap ID, now): Peerscope-{Peer,Time,Nonce,Bootstrap,Signature}
//	          ─► bootstrap: its own ID named? RequestPayload again, verify, per-peer rate, time within skew, nonce once (durably)
//	          ─► 2xx: the answer's JSON type │ 4xx/5xx: ErrorBody ─► *APIError{Status, Code, Message}
//
// Versions: a request signed as version 1 (no bootstrap named) is refused
// with the code "signature_version"; a bootstrap from before version 2
// (no ID in its info) is ErrOldBootstrap to a Client, which then signs
// nothing for it.
//
// The directory's words: a Listing is one entry as the directory lists it;
// a ListingUpdate is what the broadcaster PUTs to make or change it (a
// version that only grows, the end set once), checked by Check on both
// sides. A go-live notice is a Listing in JSON (EncodeLiveNotice,
// DecodeLiveNotice: at most MaxLiveNotice, its ID naming its broadcaster,
// its fields within a listing's limits).
//
// Private audiences (audience.go, client_audience.go): a node publishes its
// audience device key and gets the bootstrap's DeviceAttestation of it to
// its account; broadcasters fetch accounts' keys (DeviceKeyEntry.Open
// checks both signatures), put rosters and bundles; member devices fetch
// their bundles and their account's invitations.
package api
