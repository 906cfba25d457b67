// Package audience is the cryptography of private broadcasts (issue 13):
// only the audience the broadcaster picked can see a frame, a comment or
// the replay, whoever relays it. It is a pure core: no I/O, no goroutines,
// randomness from an io.Reader passed in (crypto/rand.Reader in
// production) and time as an argument. The tree, the chat, the replay, the
// bootstrap's routes and the UI build on it; none of them is imported here.
//
// The objects (wire schema in proto/audience.proto):
//
//   - DeviceKey: a member device's encryption key, an HPKE key of its own
//     (suite XWing: ML-KEM-768 + X25519, HKDF-SHA256, AES-256-GCM, named in
//     the key so it can change), signed by the device's libp2p identity key.
//     Public; its Fingerprint names it. The private half
//     (DevicePrivateKey) is kept in the node's data directory.
//   - Epoch and Keys: per epoch a random 32-byte secret, from which HKDF
//     derives the video, chat and replay keys (labels bound to the
//     broadcast and the epoch); a broadcast secret, the same in every
//     epoch, gives the private chat topic's name.
//   - Bundle: the epoch's secrets wrapped for one device key with HPKE
//     (broadcast, epoch and the key's fingerprint in the info), signed by
//     the broadcaster. Safe to leave in a bootstrap's mailbox.
//   - chunk.Chunk with an epoch: the payload sealed with AES-256-GCM under
//     the video key, the nonce derived from epoch, kind and seq and never
//     repeated, the header as additional data; the header stays readable
//     and the broadcaster's signature covers header and ciphertext.
//   - Sealed: a chat message (or a replay's secret part) sealed under the
//     chat (replay) key with a random nonce.
//   - Token and Roster: the broadcaster's word that a peer may attach, and
//     the signed list of member accounts and their devices, whose version
//     only grows.
//
// How data flows:
//
//	broadcaster:
//	  Roster{members, devices}.Sign ─► published (bootstrap, tree, topic)
//	  NewBroadcastSecret once; NextEpoch ─► NewEpoch(rand, broadcast, n, bs)
//	    ─► Epoch.Wrap(key, DeviceKey, now) for every device ─► Bundle ─► mailbox / member
//	  Token{broadcast, peer, roster version, expiry}.Sign ─► the member
//	  packager output ─► chunk.Chunk ─► Epoch.SealChunk ─► chunk.Signer.Sign ─► tree
//	  comment ─► Epoch.Keys().SealChat ─► private topic (Keys.Topic)
//	member device:
//	  NewDeviceKey(rand, identity, created, expires) ─► DeviceKey ─► bootstrap (attests, lists)
//	  Bundle ─► ParseBundle ─► Open(private key, broadcast): signature, recipient, decrypt
//	    ─► Secrets ─► Keys{video, chat, replay, topic}
//	  chunk from the tree ─► chunk.Verify (as every relay does) ─► Keys.OpenChunk ─► player, store
//	  topic message ─► ParseSealed ─► Keys (by epoch) ─► OpenChat(author) ─► chat
//	every parent:
//	  attach ─► ParseToken ─► Roster.Admits(token, peer, now)
//
// Epochs: a new one on every removal and every few minutes (NextEpoch's
// number, NewEpoch's fresh secret); a removed member gets no bundle for it
// and cannot open a chunk sealed in it, while it keeps what it opened
// before. Every refusal wraps a sentinel of errors.go.
package audience
