// Package media turns a live source into the chunks the mesh moves, and
// chunks back into something a player can play.
//
// On the way in, an ingest (WHIP from a browser or OBS, RTMP, MPEG-TS from
// ffmpeg or SRT, or a file such as the demo's embedded sample clip) yields
// timestamped access units; the CMAF fragmenter packs them into fMP4
// fragments and emits one chunk per fragment, stamped with its sequence
// number, presentation time and capture wallclock, ready to be signed by the
// broadcaster's key. The fMP4 init segment travels as an init chunk, so a
// node that joins late can start a decoder.
//
// On the way out, the same chunks feed the players: an LL-HLS muxer that
// serves them as parts (for the web page, VLC or ffplay), a WHEP packetizer
// for browsers that play over WebRTC, and HLS VOD playlists for replays. One
// chunk format serves live relay, LL-HLS parts and replay, and because a
// chunk carries its capture time every player can show its real latency.
//
// The package does no networking of its own beyond those servers: it does
// not know the tree; node connects it to the mesh.
package media
