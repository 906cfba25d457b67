// Package api is what a node needs to talk to a community bootstrap, and
// nothing of the server: the Client, the signing of requests with the
// node's libp2p key, the JSON bodies of the HTTP API (/api/v1/…), the
// errors it answers, and the go-live notices published on LiveTopic. It
// links neither SQLite nor the DHT nor the relay, so every node can import
// it; the bootstrap (package bootstrap) builds its answers from the same
// types and verifies signatures over the same RequestPayload.
//
// A signed call, from the node to the bootstrap:
//
//	Client.do ─► JSON body ─► SignRequest(key, now): Peerscope-{Peer,Time,Nonce,Signature}
//	          ─► bootstrap: RequestPayload again, verify, time within skew, nonce once
//	          ─► 2xx: the answer's JSON type │ 4xx/5xx: ErrorBody ─► *APIError{Status, Code, Message}
//
// The directory's words: a Listing is one entry as the directory lists it;
// a ListingUpdate is what the broadcaster PUTs to make or change it (a
// version that only grows, the end set once), checked by Check on both
// sides. A go-live notice is a Listing in JSON (EncodeLiveNotice,
// DecodeLiveNotice: at most MaxLiveNotice, its ID naming its broadcaster,
// its fields within a listing's limits).
package api
