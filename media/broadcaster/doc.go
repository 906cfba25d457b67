// Package broadcaster serves the page a person goes live from, on a phone
// or a PC: a camera preview, a title, a Go live / End button, and plain
// words about what is happening (camera denied, codec refused, connection
// lost). The page (HTML, CSS and one script, embedded; no framework)
// publishes over WHIP to the node that served it.
//
// Mount the handler under a path ending in a slash, and the WHIP endpoint
// (a *whip.Handler) beside it, at the URL Config.WHIP names relative to
// the page (default "whip"):
//
//	mux.Handle("/broadcast/", http.StripPrefix("/broadcast", broadcaster.New(broadcaster.Config{})))
//	mux.Handle("/broadcast/whip", whipHandler)
//	mux.Handle("/broadcast/whip/", whipHandler)
//
// Then send the broadcaster to https://NODE/broadcast/#key=STREAMKEY (the
// key in the fragment never reaches a server log; ?key= works too, and
// without either the page asks for it; #title= prefills the title). Phone
// browsers give the camera only to secure origins: serve the page over
// HTTPS (internal/tlscert makes a certificate) or on localhost. A node's
// HTTPS server serves this page and WHIP and nothing else, on loopback
// unless told an address a phone reaches (peerscope broadcast --https
// :8443). The page needs no other credential than the stream key.
//
// How data flows from the page:
//
//	getUserMedia (camera, microphone) ─► RTCPeerConnection (H.264 preferred, Opus)
//	  ─► POST Config.WHIP with the SDP offer, "Authorization: Bearer <key>" ─► media/whip
//	  ─► the node's publisher (media/publish) ─► chunks into the tree
//	End ─► DELETE the session's Location ─► the broadcast ends
//
// With Config.Audience set, the page also shows who can watch (a "Who can
// watch" panel under the controls):
//
//	GET Config.Audience, "Authorization: Bearer <key>" ─► {private, changeable, listed, audience, members}
//	  private: the members (handle, devices), Remove by those named, Add by
//	  handle, "everyone who follows you and whom you follow back", a group
//	  ─► PUT {accounts, mutuals, group} ─► the node changes the audience
//	  public: says so, and that privacy is chosen when the broadcast starts
//
// With Config.Studio set, the page shows its audience while live (the
// studio, studio.js): comments over the lower part of the preview on a
// phone and beside it on a wide screen, everyone's hearts floating up, the
// live count and the signed-in viewers, and the links to share with a Copy
// button. It reads, with the same key in a header:
//
//	GET Config.Studio+"live"          ─► {id, title, link (peerscope://), web, player, ended}
//	GET Config.Studio+"chat/events"   ─► server-sent events, read with fetch (an EventSource
//	                                     cannot send the key): comment, hearts, viewers, moderated
//	GET Config.Studio+"chat/viewers"  ─► {live, hearts, identified [{handle, name}]}, every 5 s
//	a tap on a comment, then Delete or Block
//	  ─► POST Config.Studio+"chat/moderate" {op: delete|block, target}, JSON
//	a place typed before Go live (LAT,LON, or the browser's geolocation, rounded to 0.1°)
//	  ─► PUT Config.Studio+"location" {location: {lat, lon}}, JSON: the broadcast's dot on the directory's map
package broadcaster
