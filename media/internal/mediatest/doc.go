// Package mediatest makes real CMAF streams for tests: ffmpeg encodes a
// test pattern into fragmented MP4 (H.264 plus Opus or AAC, ~200 ms
// fragments), which is split by box into the init segment and the parts, and
// turned into chunk.Chunks the way a broadcaster would emit them.
//
// How data flows:
//
//	Options ─► ffmpeg (FFmpegArgs) ─► fragmented MP4 ─► Split: init segment + parts ─► Stream
//	Stream.Chunks(broadcast, start, end) ─► []*chunk.Chunk, as publish would cut them
//	Stream.Feed(ctx, push, lead, end)    ─► the same chunks pushed in real time
//
// Generate skips the test when ffmpeg is missing (and fails it under CI).
package mediatest
