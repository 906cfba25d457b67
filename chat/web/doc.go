// Package web is a broadcast's chat as the player page sees it: the HTTP
// API over a chat.Room, the server-sent event stream that carries the
// room's events to the page, the JSON both speak, and the page's script
// that speaks them (assets/chat.js, embedded and served at chat.js).
//
// A node builds one Server per broadcast (New), with two hooks: Room, the
// room it joined (nil while or if it has none: the API then answers 404
// and the page hides its chat), and IsOwner, which tells the requests of
// the node's owner (moderation, the viewer list, reports and verdicts) from
// everyone else's. It mounts the Server as the player page's chat/ route
// (media/player Routes.Chat) and runs Run on a goroutine of its own for as
// long as the room is open. The API is listed at routes (web.go).
//
// A comment, from the page to the topic and back:
//
//	chat.js: the comment box's submit ─► POST chat/comment {"text", "at"}
//	  (at: the capture time of the frame on screen, now less the latency)
//	serveComment (handlers.go) ─► chat.Room.CommentAt
//	  ─► the room's owner goroutine: machine.comment (chat/comments.go)
//	     checks it as every peer will and builds the envelope
//	  ─► Room.publish ─► GossipSub topic /peerscope/chat/1.0.0/<broadcast>,
//	     where every peer's validator (machine.check) passes or drops it
//	  ─► delivered at each peer: machine.deliverComment ─► Room.Events()
//	Run ─► hub.send ─► each open GET chat/events stream: "event: comment"
//	  ─► chat.js shows it in the feed.
//
// Hearts go the same way in (POST chat/heart {"n", "at"} ─► Room.HeartAt,
// whose taps go up the tree with the moment the page watched, for the
// replay) and come back as "hearts" events, the rise of the
// broadcaster's total; while a stream is open, every Config.Every (500 ms)
// Run tells the streams the live count and heart total ("viewers") when
// they changed. With none open, Run sleeps until its node wakes it (a
// browser came or went) or its onTick's next due time.
//
// Refusals map to status codes in one place (writeError): not ready 503,
// rate limited 429, malformed 400, comments off, followers only, blocked,
// muted or not allowed 403, no such call or a deleted comment 404. A body
// that is not application/json is 415 (a form or text/plain is what any
// web page can send); each client holds at most Config.Streams event
// streams (429).
//
// What the page posts acts in the node's name: the node lets only its
// owner's pages post (internal/localapi: from its machine, with the page
// token the page carries in <meta name="peerscope-token">, which chat.js
// sends in Peerscope-Token). A page without a token (served to another
// machine) shows the chat read-only.
package web
