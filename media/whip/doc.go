// Package whip is the WHIP ingest (RFC 9725): a browser, OBS or any WHIP
// client publishes H.264 and Opus over WebRTC to the node.
//
// A Handler is an http.Handler. POST an SDP offer with
// "Authorization: Bearer <stream key>"; before any WebRTC work the handler
// asks Config.Authorize about the key (401) and checks the offer (it must
// offer H.264, constrained baseline or baseline with packetization-mode 1,
// whatever its order — Chromium lists VP8 first, and HLS viewers need
// H.264 — else 406 with a plain reason), refuses a second publisher on a
// live key (409, saying another publisher is live; so does an Authorize
// that returns ErrBusy, and ErrEnded gets 410), gathers every candidate (no trickle: PATCH gets 405) and
// answers 201 with the SDP answer and a Location naming the session, which
// DELETE ends. Answers carry CORS headers, so a page from another origin
// can publish: the stream key is the credential, never ambient (a node
// lets any origin and host name reach this endpoint, and compares the key
// in constant time).
//
//	POST offer ─► Authorize(key) ─► inspect codecs ─► reserve the key ─► PeerConnection, answer ─► Publish(key) = sink
//	RTP ─► reorder (NACK repairs) ─► depacketize (single NAL, STAP-A, FU-A) ─► access units ┐
//	RTP ─► reorder ─► Opus packets ───────────────────────────────────────────────────────────┴► run ─► sink
//
// A publisher that goes away without a DELETE (a phone off the network, a
// killed tab) sends nothing more: the session ends as ErrConnectionLost
// once nothing (RTP or RTCP) has come for Config.MediaTimeout (4 s), long
// before ICE would fail (about 15 s), so that its return is let in. One
// whose offer never connected is replaced by the next offer with its key
// (ErrReplaced): it is the same publisher asking again.
//
// One goroutine per session (run) owns the sink: it calls Tracks at the
// first keyframe that has its SPS and PPS (so the packager always starts
// on a decodable picture), then Sample for every access unit and Opus
// packet. PTS comes from the RTP timestamps, anchored at each track's
// first packet's arrival; DTS equals PTS (WebRTC senders do not use
// B-frames). Wallclock is that anchor plus media time, never later than
// the hand-over. A lost packet drops the picture and everything up to the
// next keyframe, which is asked for at once (RTCP PLI); keyframes are also
// asked for every Config.KeyframeInterval (2 s: segments start often) and
// whenever the node calls RequestKeyframe for a viewer that needs one.
//
// Use (the broadcaster page, media/broadcaster, posts to "whip" beside it;
// the node makes one Handler and finds the media/publish Publisher a
// stream key names for Authorize, Publish and Unpublish):
//
//	wh, err := whip.New(whip.Config{Authorize: admit, Publish: publish, Unpublish: unpublish, UDPPort: 8189})
//	mux.Handle("/broadcast/whip", wh)
//	mux.Handle("/broadcast/whip/", wh) // session resources, for DELETE
//	defer wh.Close()
//	wh.RequestKeyframe(key)              // a new viewer needs a keyframe now
//
// The WebRTC side offers host candidates only (loopback included, no mDNS,
// no STUN): the node answers, and the browser, which knows its own way
// out, connects to it. Config.UDPPort puts every session on one UDP port
// and Config.PublicIPs announces a forwarded address, for nodes behind a
// router.
package whip
