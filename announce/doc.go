// Package announce is the broadcaster's signed announcement: what it says
// about its broadcast besides the media — the title, when it started,
// whether it has ended, the measured bitrate — and the protocol that
// carries it between nodes.
//
// The broadcaster makes a new version at every change (Sign, with a version
// that only grows) and keeps the newest for whoever asks. Every node that
// holds a verified copy answers too (Serve, on ProtocolID), so a viewer asks
// its parent rather than the broadcaster:
//
//	broadcaster: Announcement ─► Sign(host key) ─► Signed (body as sent + signature)
//	viewer:      Fetch(peer) ─► frame ─► Decode(about this broadcast, by this key) ─► newest version wins
//	any holder:  Serve(stream, lookup) ─► the Signed it holds, as it came
//
// The key is the one inlined in the broadcast ID (package link), so a node
// verifies an announcement with nothing but the link it was given. The
// signature covers the body bytes as they were sent: a node that does not
// know a newer field passes the announcement on intact. The wire schema is
// proto/announce.proto (generated code in proto/announcepb).
//
// CleanTitle is the one rule for a title a person typed (a publisher's, a
// broadcast's config): control characters out, at most MaxTitle characters.
package announce
