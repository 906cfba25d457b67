// Package chat is everything in a broadcast besides the video: comments,
// hearts, who is watching, and moderation.
//
// Each broadcast has one libp2p GossipSub topic. A node publishes its
// viewer's comments and hearts and a periodic presence beat to it, and
// receives everyone else's. Every peer runs the same message validators
// before accepting or relaying a message — size and rate limits, the
// sender's signature and identity attestation, whether the broadcaster has
// disabled comments or blocked the sender, and for a private broadcast
// whether the sender is on its audience list — so moderation is enforced by
// the whole swarm rather than by a server, and a message the broadcaster
// would refuse is dropped at the first honest hop. Accepted messages flow to
// the local UI and, for replays, into the chat log that the replay manifest
// references, so comments are replayed in time with the video.
package chat
