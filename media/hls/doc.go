// Package hls serves a live broadcast as Low-Latency HLS, straight from its
// chunks.
//
// Each chunk already is a CMAF part, so nothing is remuxed: a Server
// takes the chunks as the tree delivers them (Push, in any order, each
// possibly more than once), puts them back in sequence (a gap that is not
// repaired within Config.GapWait is given up, and playback resumes at the
// next keyframe after an EXT-X-DISCONTINUITY), and lists them in one media
// playlist:
//
//	chunks ─► in order ─► parts (one per chunk, EXT-X-PART)
//	                   ─► segments (the runs of parts from one keyframe to the next,
//	                      split at Config.TargetDuration when keyframes are rare)
//	                   ─► window (the last Config.Window of media, bounded in bytes)
//
// The playlist carries what LL-HLS players need: EXT-X-PART-INF,
// EXT-X-SERVER-CONTROL with CAN-BLOCK-RELOAD and PART-HOLD-BACK, blocking
// reloads (_HLS_msn, _HLS_part), EXT-X-PRELOAD-HINT for the next part (its
// request is held until the part arrives), EXT-X-MAP for the init segment,
// EXT-X-PROGRAM-DATE-TIME from the chunks' capture wallclocks, and
// EXT-X-ENDLIST once the broadcast ends. A segment is served as the
// concatenation of its parts, so players without LL-HLS support (ffplay,
// VLC) play the same stream a few seconds later.
//
// Resources, relative to where the Server is mounted:
//
//	index.m3u8         the media playlist (no multivariant playlist)
//	init/{n}.mp4       an init segment
//	part/{seq}.m4s     one part: the payload of chunk seq, with its capture
//	                   time in the Peerscope-Wallclock header (Unix ms)
//	seg/{msn}.m4s      one segment
//
// Requests wait only in their own handler goroutine, on a channel closed at
// every change, bounded by Config.MaxBlock and by the request's context.
//
// VOD serves a finished broadcast (a replay) from a list of its chunks,
// all known up front: a VOD playlist, its segments fetched part by part
// through a callback when asked for.
package hls
