// Package cmaf packs the access units of a live source into CMAF: one fMP4
// init segment (ftyp+moov) and a stream of parts (moof+mdat), each part the
// payload of one chunk (package chunk) and one LL-HLS part.
//
// A Packager is a media.Sink. A source calls Tracks, then Sample for every
// access unit; the packager calls its Emit function, synchronously and in
// order, with an init segment before the first part and again whenever the
// codec configuration changes, and with each part as soon as it is complete.
// It never starts a goroutine and never reads a clock: time comes from the
// samples.
//
//	source ─► Tracks, Sample ─► normalise timestamps ─► wait for the first keyframe
//	       ─► merge tracks by DTS ─► cut parts ─► Emit(init), Emit(part), ...
//
// Rules, in the order a sample meets them:
//
//   - Timestamps are made strictly increasing per track. A DTS that goes
//     backwards, repeats, or jumps forward by more than Config.MaxGap is a
//     discontinuity: the track is re-based so that it continues where it
//     stopped (tracks that jump together are re-based together, so A/V sync
//     survives an encoder restart), or, with Config.StrictTimestamps, the
//     sample is refused with ErrDiscontinuity.
//   - Nothing is emitted before the first video keyframe (an IDR picture)
//     whose SPS and PPS are known, from the track or from the keyframe's own
//     NALUs. Earlier video is dropped, and counted in Stats.DroppedVideo;
//     earlier audio is kept for Config.MaxLag, so that the stream starts with
//     the audio that belongs to its first picture, and dropped beyond that.
//     If no keyframe comes within Config.VideoTimeout of media, Sample fails
//     with ErrNoKeyframe: a source that sends audio but never video costs
//     bounded memory and gets a clear error. A broadcast declared without a
//     video track is packaged audio-only, every part independent.
//   - Tracks are merged by DTS: a sample is placed only when every other
//     track has caught up with it, or has fallen more than Config.MaxLag
//     behind the newest sample (a stalled track is not waited for; its late
//     samples join the part that is open when they arrive).
//   - A part is cut before every video keyframe, so that every segment
//     starts independent, and before the sample that would take the part
//     past Config.PartDuration (1 ms of timestamp jitter allowed): parts are
//     never longer than the target unless one sample is, or the input has a
//     gap (a lost picture, a stall) that the last sample spans. While video flows,
//     cuts fall on video samples only; when video stalls, audio is cut
//     alone. A part is also cut before it would exceed Config.MaxPartSize.
//   - A keyframe whose SPS or PPS differ from the current init segment's
//     starts a part preceded by a new init segment. Tracks may be called
//     again (an encoder reconnected): what is pending is flushed, the new
//     session waits for its keyframe, its timeline continues where the old
//     one ended, and a new init segment is emitted only if it differs.
//
// Each part holds one traf per track that has samples in it (video first),
// each with its own baseMediaDecodeTime (timescale 90000 for video, the
// sample rate for audio) counted from the first keyframe, a version-1 trun
// with signed composition offsets for B-frames, and one mdat holding each
// track's samples contiguously. H.264 access units are stored as
// length-prefixed NALUs (avc1); access unit delimiters and filler data are
// dropped, in-band SPS/PPS are kept, so that a WebRTC packetizer reading the
// parts finds them at every keyframe.
package cmaf
