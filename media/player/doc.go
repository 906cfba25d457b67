// Package player serves the web page that plays a broadcast in a browser.
//
// The page (HTML, CSS and a small script, embedded in the binary; no
// framework, no third-party code) shows the video, the broadcast's title
// and its live latency. It starts over WHEP, the quickest to the first
// picture, and falls back to LL-HLS when WebRTC does not come up: a minimal
// Media Source Extensions reader of its own fetches the init segment and
// then each part as the blocking playlist reload announces it, and appends
// them to one SourceBuffer. It keeps near the live edge by playing slightly
// faster when it falls behind, jumps holes left by lost parts, and shows a
// clean "broadcast ended" state.
//
// The chat is chat/web's: Routes.Chat serves its API and its script,
// chat/chat.js, which the page loads and which shows the page's chat
// section (hidden until then: a page without Routes.Chat has no chat): a
// comment feed and box (a comment is placed at the frame on screen: now
// less the live latency), a heart button with floating hearts, the live
// count, a jury prompt when this viewer is summoned, and, for the node's
// owner (#owner=TOKEN in the URL), comments off, block and delete and the
// viewer list. What the chat posts carries the page token Routes.Token
// gives the page (<meta name="peerscope-token">); a page without one has a
// read-only chat.
//
// Around the video (issue 15): who broadcasts (Status.Who: face or
// initials, name, handle and the identity's source, or anonymous, or not
// known here), a Follow button that asks the node serving the page
// (/directory/api/node/follow, with the page token; a page without one says
// where following works), Share (navigator.share, else a sheet with
// Status.WebLink or the page's own URL and Status.Link, each with Copy) and
// the faces behind the viewer count (chat/viewers). The layout follows the
// screen: on a phone the comments and hearts lie over the lower video; on a
// tablet held sideways they stand beside it, held upright under it.
//
// The page is served with its own Content-Security-Policy (CSP: its
// scripts and style, media from blob:, images from https: for avatars, no
// framing) and no-store, as it carries the token. A page without a chat
// (a replay) gets an empty chat/chat.js.
//
// Live latency is the capture time of the frame on screen against the
// viewer's clock: over HLS from each part's Peerscope-Wallclock header and
// its tfdt, over WHEP from the browser's estimatedPlayoutTimestamp, which
// the WHEP sender reports map to capture time.
//
// New returns the handler for one broadcast; mount it under a path of its
// own ending in a slash (the page uses relative URLs):
//
//	{prefix}/              the page (a path without the slash redirects)
//	{prefix}/player.js     its script, {prefix}/player.css its style
//	{prefix}/api/status    Status as JSON
//	{prefix}/hls/…         Routes.HLS (an *hls.Server)
//	{prefix}/whep[/…]      Routes.WHEP (a *whep.Server)
//	{prefix}/api/peer      Routes.Peer as JSON, {prefix}/peer.js
//	                       Routes.PeerScript (the tree, from the page)
//	{prefix}/chat/…        Routes.Chat (chat/web: the chat's API, and its
//	                       script at chat/chat.js)
//
// Replay mode: when api/status says replay, hls/ is a VOD playlist
// (hls.VOD): the page appends its segments from the start, keeps 30 s
// ahead, seeks with the video's controls (loading from the segment sought)
// and shows the comments of Routes.Comments (api/comments) as the playhead
// passes the moment each was written, and floats the hearts of
// Routes.Hearts (api/hearts: a count for each second that had any) as it
// plays through their second (a seek floats none; a node without
// api/hearts gives a page without them). api/hearts takes no query: a
// request with one is refused (400). An ended broadcast's page links to
// its replay (Status.ReplayURL) and shows replay views beside the live
// count.
//
// From the tree itself (?mode=p2p): the page fetches api/peer (Routes.Peer:
// the broadcast, the tree's protocol ID, the node's WebRTC-direct
// addresses), loads the light node's script, peer.js (Routes.PeerScript:
// web/peer's bundle), and joins the broadcast's tree as a leaf through the
// node; the verified chunks, back in sequence, go to the same Media Source
// Extensions reader as LL-HLS parts (one SourceBuffer, the same live-edge
// keeping, latency from each chunk's capture time and tfdt). Should it fail
// to start, the page plays over WHEP. A page whose api/status says
// prefer "p2p" (a bootstrap's web link) starts that way without being
// asked; api/peer's slots are the other browsers it then offers to feed,
// unless it is on a metered network (none) or ?slots=N says.
//
// Query options of the page: ?mode=hls, ?mode=whep or ?mode=p2p forces one
// way of playing (no fallback); ?slots=N (at most 8) sets the child slots
// of the light node; ?debug shows a log.
package player
