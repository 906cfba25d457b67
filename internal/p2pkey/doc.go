// Package p2pkey keeps a libp2p identity (an ed25519 private key) in a
// file, so that a node or a bootstrap keeps its peer ID across restarts:
// links, relay reservations and the bootstraps that nodes are configured
// with all name a peer ID.
//
// How data flows: Load(path) reads the key file (protobuf-marshalled, as
// libp2p writes keys; anything but an ed25519 key is ErrBadKey), or makes a
// new ed25519 key and writes it there first; an empty path gives a key for
// this run only. The node (its data directory) and the bootstrap
// (--data/p2p-identity.key) pass the key to libp2p.New.
package p2pkey
