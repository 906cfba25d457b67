// Package whep plays a live broadcast to browsers over WebRTC (WHEP, the
// WebRTC-HTTP Egress Protocol).
//
// The chunks of a broadcast come in from the tree (Push, in any order); a
// Server puts them in sequence, unpacks each CMAF part into samples
// (media/fmp4) and hands them to every session without ever waiting for
// one:
//
//	chunks ─► in order ─► unpack ─► GOP cache (samples since the last keyframe)
//	                              └► each session's queue (bounded; full → the
//	                                 session skips to the next keyframe)
//	session goroutine ─► pace by DTS ─► H.264 RTP (SPS/PPS before every IDR),
//	                                    Opus RTP as it came, RTCP sender reports
//
// A session starts at a keyframe: when its ICE connection is up it is given
// the video since the latest keyframe at once (so the first picture shows
// without waiting for the next keyframe), then the live samples, paced by
// their timestamps. Its sender reports map RTP time to the capture
// wallclock, so a browser's estimatedPlayoutTimestamp (getStats) is the
// capture time of what it shows: the page's live latency.
//
// Browsers cannot decode AAC over WebRTC. For a broadcast whose audio is
// AAC (RTMP and MPEG-TS sources) a session carries video only, and the
// response says so in its AudioHeader ("none; codec=aac"): the page tells
// the viewer that the sound is available over LL-HLS.
//
// HTTP, relative to where the Server is mounted:
//
//	POST   /        an SDP offer (application/sdp) → 201, the answer, Location
//	DELETE /{id}    ends the session (the Location of the POST)
//	OPTIONS         CORS preflight; every response allows any origin
//
// Trickle ICE (PATCH) is not offered: the answer carries every candidate.
// The number of sessions is bounded (Config.MaxSessions), and so is each
// client's (Config.MaxSessionsPerClient, 4: an IPv4 address or an IPv6 /64,
// internal/clientip), so one client cannot take every session; past it an
// offer is answered 429. Clients says how many sessions each client holds,
// which the node counts viewers by. Close ends every session and returns
// once their goroutines are gone.
package whep
