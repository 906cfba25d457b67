// Package media turns a live source into the parts that become a
// broadcast's chunks, and chunks back into something a player can play.
// This package holds only what its subpackages share: Track, Sample and
// Part, the Sink and Source interfaces, the codecs, and the errors
// (ErrBadInput, ErrUnsupportedCodec).
//
// On the way in, an ingest yields timestamped access units into a Sink:
// WHIP from a browser or OBS (media/whip; the page it is sent from is
// media/broadcaster), RTMP (media/rtmp), MPEG-TS from ffmpeg, UDP or SRT
// and files (media/ingest; the demo's clip is media/sample). The
// broadcaster's publisher (media/publish) owns that Sink: the CMAF packager
// (media/cmaf) packs the samples into an fMP4 init segment and parts, and
// the publisher makes each of them a chunk.Chunk, signs it and hands it to
// the node, which sends it down the tree.
//
// On the way out, the same chunks, as the tree delivers them, feed the
// players: media/hls serves them as LL-HLS parts (for the web page, VLC or
// ffplay) and replays as HLS VOD, media/whep unpacks them again
// (media/fmp4) and sends them over WebRTC, and media/player is the page
// that plays either. Both servers first put the chunks back in sequence
// (media/internal/inorder). One chunk format serves live relay, LL-HLS
// parts and replay, and because a chunk carries its capture time every
// player can show its real latency.
//
//	camera, encoder, file ─► whip | rtmp | ingest ─► Sink ─► publish: cmaf.Packager ─► chunk.Chunk, signed
//	  ─► (node: the tree) ─► delivered chunks ─► hls.Server | whep.Server ─► player page
//
// No package under media imports the tree (mesh): chunks come from package
// chunk, and node joins the two.
package media
