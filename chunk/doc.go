// Package chunk is the unit every part of Peerscope moves: a piece of a
// broadcast's stream — a CMAF part, or the init segment — with a small header
// (broadcast ID, sequence number, capture time, duration, flags), signed by
// the broadcaster with ed25519.
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
