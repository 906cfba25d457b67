// Package chat is everything in a broadcast besides the video: comments,
// hearts, who is watching, and moderation that the whole swarm enforces.
//
// Each broadcast has one GossipSub topic, TopicPrefix + the broadcast ID.
// Every message on it is an Envelope (the schema is in wire.go): a
// comment, a heart count, a presence beat, a report, a jury vote, the
// broadcaster's beat, a moderator's request, or a moderation action. Pubsub
// signs each message with its author's libp2p key; a moderation action
// also carries the broadcaster's own signature inside, over the action and
// a sequence number, so that any peer may pass it on (and hand it to a
// joiner) and none can forge or roll it back: for each (op, target) the
// action with the highest sequence number is in force.
//
// Data flow, on every node:
//
//	pubsub ─► validator (pubsub's workers) ─► owner goroutine: machine.check ─► accept / reject / ignore
//	                                                    │ actions take effect here
//	pubsub ─► subscription ─► owner: machine.deliver ─► Events(), the log, viewers, jury tallies
//	ticker ─► owner: machine.tick ─► beats, heart flushes, presence, jury deadlines ─► publisher ─► pubsub
//	API (Comment, Heart, Report, Vote, Block, …) ─► owner builds the envelope ─► caller publishes
//
// The machine is a pure state machine in the manner of mesh.Node: no
// goroutines, no I/O, no clock (now is an argument). Its check is the
// validator every peer runs: size and field limits, the author's
// attestation, the broadcaster's signature on actions, the block list,
// mutes, deletions, the comments-off and followers-only switches, and a
// token bucket per sender and kind. A message the broadcaster would refuse
// is dropped at the first honest hop and reaches nobody, whoever relays it.
// Invalid messages (malformed, forged, a sender flooding its own messages)
// are rejected, which peer scoring (PubSubOptions) turns into a graylist;
// messages refused because of state or rate are ignored, so honest relays
// are never penalised.
//
// The broadcaster's room sequences moderation (a moderator's request is
// carried out by it), beats every two seconds (live count, heart total,
// how often viewers should send presence and hearts, and a digest of the
// moderation state), and runs juries: a report makes it pick random
// viewers it has heard from, a majority of guilty votes makes it mute the
// author for a minute, a second conviction for the rest of the broadcast.
// A node accepts comments only once its moderation digest has matched a
// beat; a joiner gets the actions in force from any peer over
// StateProtocol.
//
// Identity: an Attestation, signed by a bootstrap key the node trusts,
// binds a peer to an account (handle, name, avatar). A sender without one
// is anonymous. Accepted comments are kept with their place in the stream
// (the broadcast's wallclock) for the replay (Log, MarshalLog, Due).
//
// Not yet: private broadcasts, where only identities on the broadcaster's
// audience list may join the chat.
package chat
