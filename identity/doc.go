// Package identity is what every node uses to believe (or not) who a peer
// says it is.
//
// A community bootstrap checks that whoever holds a libp2p peer key signed
// in as an account (Twitter, a phone number, …) and signs an Attestation
// with its own ed25519 key: provider, account ID, handle, display name,
// avatar, the peer ID, issue and expiry times. The attestation travels in
// chat messages and directory requests as its protobuf bytes (the schema is
// proto/identity.proto, the codec the generated proto/identitypb); a
// receiver parses it (ParseAttestation: size, wire types, UTF-8 and every
// field's limit), keeping the signed body's bytes as they came, then checks
// it against the keys it trusts.
//
// Trust: a node trusts a TrustSet, the union of the key sets of the
// bootstraps it is configured with. A bootstrap's KeySet lists its current
// signing key and the keys it retired, each with the window in which it
// signed; an attestation is believed only if its issuer is in the set, it
// was issued inside its key's window, it lives at most MaxLifetime (30
// days) and it has not expired. So a bootstrap can rotate its key without
// invalidating what it already issued, a retired key that leaks can mint
// nothing that outlives its retirement by more than MaxLifetime (however
// it is backdated), and a revoked key stops being believed at once. A key
// set also carries its bootstrap's Revocations (one attestation by its ID,
// a peer's or an account's issued before an instant), which the trust set
// applies to that set's keys only (ErrRevoked).
//
// The data flow:
//
//	bootstrap: sign-in ─► Attestation{…, Peer} ─► Sign(key) ─► Marshal ─► node
//	node:      Marshal bytes ─► chat / directory ─► ParseAttestation ─► TrustSet.Verify(peer, now)
//
// Nothing here does I/O; time is always an argument.
package identity
