// Package publish is the broadcaster's side of a live broadcast: what turns
// the media of one publisher at a time into the broadcast's signed chunks.
//
// A Publisher owns the CMAF packager and the chunk sequence. Media comes
// from a Source (a file, MPEG-TS, UDP, SRT: its end is the broadcast's) or
// from publishers over RTMP (ListenRTMP) and WHIP (the node's endpoint
// calls Admit, Publish, Unpublish), one at a time across both:
//
//	Source.Run / RTMP / WHIP ─► Sink (this publisher's, refused once replaced)
//	  ─► cmaf.Packager ─► init and parts ─► chunk.Chunk{Seq, Wallclock, Duration, flags}
//	  ─► chunk.Signer ─► Config.Record (the replay's manifest) ─► Config.Publish (the tree)
//
// A publisher that ends its stream ends the broadcast; one that is cut off
// has Config.Grace to come back (a new publisher continues the sequence);
// one that never sent media frees the slot quietly. At the end the packager
// is flushed and the last part carries chunk.FlagEnd (or an empty end chunk
// is sent). The measured bitrate is re-announced when it moves by a quarter,
// at most every 10 s. What the announcement should say (a publisher's
// title, the bitrate, the end) goes out through Config.Announce: the
// publisher does not know the announcement, the tree or the node.
package publish
