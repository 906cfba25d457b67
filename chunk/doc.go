// Package chunk is the unit every part of Peerscope moves: a piece of a
// broadcast's stream — a CMAF part, or the init segment — with a small header
// (broadcast ID, sequence number, capture time, duration, flags, and for a
// private broadcast the key epoch), signed by the broadcaster with ed25519.
// A public chunk has epoch 0 and the bytes and signature chunks always had;
// a private chunk's payload is ciphertext (sealed by package audience, which
// this package does not import) and its signature, under a domain of its
// own, covers the epoch, so relays verify and route it without the key.
//
// It is a leaf: the tree (mesh) relays chunks, the players (media/hls,
// media/whep) play them, the replay store keeps them, and none of those needs
// the others to know what a chunk is. A chunk has one encoding (Bytes,
// Decode), the canonical form of message Chunk in proto/chunk.proto:
// the broadcaster encodes a chunk once when it signs it, every relay forwards
// those bytes as they came, the replay store keeps them, and a replay block's
// CID is their hash.
//
//	packager output ─► Chunk{Seq, Wallclock, Duration, Flags, Payload}
//	  ─► Signer.Sign (ed25519 over SigningBytes, then Bytes once)
//	  ─► relays: Decode ─► Verify ─► forward Bytes ─► players, replay store
package chunk
