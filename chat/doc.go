// Package chat is everything in a broadcast besides the video: comments,
// hearts, who is watching, and moderation that the whole swarm enforces.
//
// Each broadcast has one GossipSub topic, TopicPrefix + the broadcast ID.
// Every message on it is an Envelope (proto/chat.proto, with every field's
// limits; codec.go speaks it through the generated proto/chatpb, after
// wirecheck.go has refused what chat 1.0.0's hand-written decoder refused,
// so that peers of either version judge every message alike): a comment,
// a heart count (from a node outside a tree), a presence beat, a report, a
// jury vote, the broadcaster's beat, a moderator's request, or a
// moderation action. Pubsub
// signs each message with its author's libp2p key; a moderation action
// also carries the broadcaster's own signature inside, over the action and
// a sequence number, so that any peer may pass it on (and hand it to a
// joiner) and none can forge or roll it back: for each (op, target) the
// action with the highest sequence number is in force.
//
// Data flow, on every node (room.go is the shell; the machine's files are
// named after what they handle):
//
//	pubsub ─► validator (pubsub's workers) ─► owner goroutine: machine.check (validate.go) ─► accept / reject / ignore
//	                                                    │ actions take effect here (moderation.go)
//	pubsub ─► subscription ─► owner: machine.deliver ─► Events(), the log (comments.go), viewers (presence.go), jury tallies (jury.go)
//	ticker, armed for machine.nextTick ─► owner: machine.tick (tick.go) ─► beats, presence, jury deadlines ─► publisher ─► pubsub
//	API (Comment, Report, Vote, Block, …) ─► owner builds the envelope ─► caller publishes
//	API Heart ─► owner ─► Config.Tap ─► the node's tree (a mesh/p2p Tree), whose statuses carry them up
//	            (tree.go: TreeLink wires a room's Tap, Audience, WebViewers, Hearts, Edge and LiveEdge to the tree)
//	the broadcaster's beat ─► owner: machine.deliver ─► Config.LiveEdge ─► the node's tree (its live edge)
//
// A page reaches the API through package chat/web (the HTTP API, the
// event stream and the page's script): a comment typed on the page is
// POSTed to chat/web, which calls Room.CommentAt; the owner goroutine's
// machine.comment builds and checks it, and the caller publishes it on the
// topic, where every peer's validator passes or drops it.
//
// What every viewer does at some rate is not sent on the topic, where the
// broadcaster would get every message (several copies): the tree adds it
// up. A child's mesh status to its parent (when it changed, at most every
// 250 ms) carries the hearts tapped in its subtree since its last status,
// the subtree's size and the browsers it serves; the broadcaster's node
// reads the sums
// (Config.Audience, WebViewers, Hearts), and its beat, one message every
// BeatInterval, carries the live count and the heart total down to
// everyone, who float the total's rise. Presence is left to identified
// viewers, so that the broadcaster can list them by name: a join with the
// attestation, then a beat every presence interval (30 s or more, scaled
// so the topic carries about two a second), the attestation only on every
// fourth.
//
// The machine is a pure state machine in the manner of mesh.Machine: no
// goroutines, no I/O, no clock (now is an argument). Its check is the
// validator every peer runs: size and field limits, the author's
// attestation, the broadcaster's signature on actions, the block list,
// mutes, deletions, the comments-off and followers-only switches, and a
// token bucket per sender and kind (golang.org/x/time/rate, driven with
// now). A message the broadcaster would refuse
// is dropped at the first honest hop and reaches nobody, whoever relays it.
// Invalid messages (malformed, forged, a sender flooding its own messages)
// are rejected, which peer scoring (PubSubOptions) turns into a graylist;
// messages refused because of state or rate are ignored, so honest relays
// are never penalised.
//
// The broadcaster's room sequences moderation (a moderator's request is
// carried out by it), beats every two seconds (live count, heart total,
// how often viewers should send presence and topic hearts, a digest of
// the moderation state, and the stream's live edge, which each viewer's
// tree takes as a hint against a withholding parent), and runs juries: a report makes it pick random
// viewers it has heard from, a majority of guilty votes makes it mute the
// author for a minute, a second conviction for the rest of the broadcast.
// A node accepts comments only once its moderation digest has matched a
// beat; a joiner gets the actions in force from any peer over
// StateProtocol.
//
// Identity: an Attestation, signed by a bootstrap key the node trusts,
// binds a peer to an account (handle, name, avatar). A sender without one
// is anonymous. The trust set (keys and revocations) and the node's own
// attestation are followed while the room runs (Config.TrustSource,
// AttestationSource, asked whenever the room wakes): a new trust set makes
// the machine judge every identity afresh, so a revoked one is anonymous
// from the room's next message or call on. Accepted comments are kept with their place in the stream
// (the broadcast's wallclock) for the replay (Log, MarshalLog, Due; an
// author blocked since is marked deleted there), and the broadcaster
// counts the hearts of each second (Room.HeartLog, at most
// MaxHeartSeconds), which the replay manifest carries: at the moment their
// tappers watched when they said it (Room.HeartAt: up the tree by the
// second, in the moment counters "hearts@k" beside TreeHearts; over the
// topic as a Heart's at), where they arrived otherwise.
//
// Not yet: private broadcasts, where only identities on the broadcaster's
// audience list may join the chat.
package chat
