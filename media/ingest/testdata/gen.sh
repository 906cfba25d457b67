#!/usr/bin/env bash
# Makes the small test inputs of media/ingest (committed; rerun only to
# change them). Needs Debian's ffmpeg.
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y -fflags +bitexact -flags +bitexact "$@"; }
src=(-f lavfi -i testsrc2=size=160x90:rate=25:duration=2 -f lavfi -i sine=frequency=440:sample_rate=48000:duration=2)
x264=(-c:v libx264 -preset veryfast -g 25 -b:v 100k)

# H.264 (main, B-frames) + AAC in MPEG-TS.
ff "${src[@]}" "${x264[@]}" -profile:v main -bf 2 -c:a aac -b:a 32k -ac 2 -f mpegts aac-bframes.ts
# H.264 + AAC in a progressive MP4, and the same fragmented (refused).
ff "${src[@]}" "${x264[@]}" -profile:v main -bf 2 -c:a aac -b:a 32k -ac 2 -movflags +faststart clip.mp4
ff "${src[@]}" "${x264[@]}" -c:a aac -b:a 32k -ac 2 -movflags +frag_keyframe+empty_moov frag.mp4
# H.264 + Opus in MP4.
ff "${src[@]}" "${x264[@]}" -profile:v baseline -c:a libopus -b:a 32k -ac 2 opus.mp4
# Codecs the tree does not carry: MPEG-2 video and MP2 audio.
ff "${src[@]}" -t 0.4 -c:v mpeg2video -b:v 100k -c:a mp2 -f mpegts mpeg2.ts
ls -l
