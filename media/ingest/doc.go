// Package ingest turns MPEG-TS and MP4 into media samples: the sources a
// broadcaster uses besides WHIP and RTMP.
//
//	TS bytes (io.Reader: a pipe, stdin)  ─┐
//	UDP datagrams (ListenUDP)            ─┼─► TS demuxer ─┐
//	SRT publisher (ListenSRT)            ─┘                ├─► media.Sink (the cmaf.Packager)
//	file (OpenFile: MPEG-TS or MP4) ─► demuxer ─► pacer ──┘
//
// Every source is a media.Source: Run(ctx, sink) calls sink.Tracks, then
// sink.Sample for every access unit, on Run's goroutine, and returns when
// the input ends (nil), when ctx ends (ctx.Err()), or when the input is not
// media it can carry (an error wrapping media.ErrBadInput, and
// media.ErrUnsupportedCodec for a codec other than H.264, Opus and AAC).
// Run does not flush the sink: call cmaf.Packager.Flush after it returns.
//
// The TS demuxer is mediacommon's. Around it, this package bounds what bad
// input can cost: no program (PAT/PMT) within 4 MiB of input (in practice
// 1 MiB, where mediacommon stops looking), or 4 MiB of input without a
// single access unit, is ErrBadInput, and so is input that ends before any
// media; a panic inside the demuxer becomes ErrBadInput too.
// Timestamps are the stream's own (33-bit wrap handled), shared by all
// tracks so A/V sync is kept, starting near 0; Wallclock is when the sample
// was read (a live source) or when it was due (a paced file).
//
// Files are paced by DTS against a Clock (real time by default, a fake one
// in tests), each sample released when it is due and stamped with that time
// as its Wallclock; with WithLoop a file plays forever, each loop's
// timestamps continuing where the last ended, so players never see the
// loop. MP4 files are read with mediacommon's pmp4 (progressive MP4 with
// H.264 and AAC or Opus); fragmented MP4 is refused with a hint to remux
// it to MPEG-TS (ffmpeg -i in.mp4 -c copy -f mpegts out.ts).
//
// UDP and SRT sources bind when created (ListenUDP, ListenSRT), so a busy
// port is reported at once and the bound address is known; Run serves until
// ctx ends. A UDP source takes the datagrams of the first address (IP and
// port) that sends to it and drops, counting them, those of any other: an
// encoder that restarts sends from a new port unless told to keep one
// (ffmpeg: udp://HOST:PORT?localport=N). An SRT listener takes one publisher at a time, admitted by its
// streamid (the stream key) and, when one is set, its passphrase (AES
// encryption); when a publisher disconnects the next one may connect, and
// the sink is given the tracks again (cmaf.Packager continues the timeline).
package ingest
