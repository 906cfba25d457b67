#!/usr/bin/env bash
# Makes media/sample/sample.ts, the clip the demo streams: 10 s of a 640x360
# test pattern with a running timecode, H.264 (constrained baseline, a
# keyframe every second, no B-frames, ~400 kb/s) and Opus (48 kHz stereo, a
# 1 kHz tone beeping once a second) in MPEG-TS. The output is committed, so
# this runs only when the clip must change.
#
# Needs Debian's ffmpeg and a font for drawtext:
#   apt-get install -y ffmpeg fonts-dejavu-core
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-media/sample/sample.ts}
font=${FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf}
[[ -r $font ]] || font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

fps=30
secs=10

# The timecode is the picture's own PTS (hh:mm:ss.ms) plus the frame number,
# so a viewer can read the latency and spot a dropped or repeated frame.
text="drawtext=fontfile=${font}:fontsize=40:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8"
text+=":x=(w-tw)/2:y=h-th-24:text='%{pts\:hms} f%{frame_num}'"

# -bitexact and -fflags +bitexact keep the encoder's version string out of
# the file, so rebuilding with the same ffmpeg gives the same bytes.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=640x360:rate=${fps}:duration=${secs}" \
	-f lavfi -i "sine=frequency=1000:sample_rate=48000:beep_factor=4:duration=${secs}" \
	-filter_complex "[0:v]${text},format=yuv420p[v];[1:a]aformat=channel_layouts=stereo[a]" \
	-map '[v]' -map '[a]' \
	-c:v libx264 -profile:v baseline -level 3.0 -preset veryfast -tune zerolatency \
	-b:v 400k -maxrate 400k -bufsize 400k \
	-g "$fps" -keyint_min "$fps" -sc_threshold 0 -bf 0 \
	-x264-params "nal-hrd=none:aud=1" \
	-c:a libopus -b:a 64k -ar 48000 -ac 2 -frame_duration 20 \
	-fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
	-mpegts_flags +resend_headers -muxdelay 0 -muxpreload 0 \
	-f mpegts "$out"

ls -l "$out"
ffprobe -hide_banner -loglevel error -show_entries stream=codec_name,profile,width,height,sample_rate,channels,r_frame_rate:format=duration,bit_rate -of compact "$out"
