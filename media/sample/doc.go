// Package sample holds the clip the demo streams: 10 s of a 640x360 test
// pattern with a running timecode and a beep every second, H.264
// (constrained baseline, 30 fps, a keyframe every second, no B-frames,
// ~400 kb/s) and Opus (48 kHz stereo, 20 ms frames, 501 of them) in MPEG-TS, about
// 0.8 MB. scripts/make-sample.sh makes it.
//
// Play it, paced and looped, into a packager:
//
//	src, _ := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), ingest.WithLoop())
//	err := src.Run(ctx, packager)
//
// Browsers play its Opus over WHEP as it is; an LL-HLS player gets it in
// fMP4 (hls.js plays Opus in fMP4 in Chromium and Firefox; Safari's native
// HLS player may not).
//
// How data flows: TS() returns the embedded clip's bytes ─► media/ingest
// (a paced, looped file source) ─► media/publish (or a bare cmaf.Packager)
// ─► chunks; 'peerscope demo' and 'peerscope broadcast --from sample' play
// it, and so do the tests (internal/testutil Feed).
package sample
