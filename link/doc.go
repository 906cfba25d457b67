// Package link names broadcasts and says where to join them: a broadcast ID
// ("<broadcaster's peer ID>.<nonce>", which carries the key that signs its
// chunks) and the peerscope:// link a person shares (the ID and peers to
// join the broadcast's tree through).
//
// Everything here is checked without the network: Parse refuses a link
// whose broadcaster's peer ID holds no ed25519 key, whose peers name no
// address, or that is too long; BroadcasterOf gives the broadcaster and its
// public key from the ID alone, which is how every node verifies chunks,
// announcements and replay manifests of a broadcast it has only a link to.
//
// Data flows one way: a broadcaster makes an ID (NewBroadcastID) and hands
// out Link.String(); a viewer's node parses it (Parse), asks the link's
// peers for the broadcast's announcement (package announce) and joins the
// tree through them (mesh/p2p).
package link
