#!/usr/bin/env bash
# Measures what relaying costs a viewer node: CPU (share of one core) and
# memory (VmRSS, VmHWM) of a `peerscope watch` process that relays a
# 2.5 Mb/s broadcast to 3 children, all on loopback, each node its own
# process:
#
#   peerscope broadcast (1 slot) ─► measured viewer (3 slots) ─► 3 viewers (--upload 0)
#
# The stream: a 1280x720 30 fps test pattern with noise (so x264 spends the
# whole budget) at 2.3 Mb/s H.264 (constrained baseline, a keyframe a second)
# plus 96 kb/s Opus, about 2.5 Mb/s of chunk payload with the fMP4 framing
# (the script prints what it measured), made with ffmpeg into a temporary
# directory and looped by the broadcaster at its own pace. CPU time is read from
# /proc/<pid>/stat (utime + stime) over the measured interval, memory from
# /proc/<pid>/status at its end; the viewer's /metrics say what it sent.
#
# The third child is a light node, `watch --upload 0 --no-replays`: its
# VmRSS and CPU are printed too (the other two keep replays).
#
#   scripts/measure-relay.sh [-b BINARY] [-o DIR] [SECONDS]     (default 60; needs go, ffmpeg, curl)
#
# -b runs a peerscope binary built beforehand instead of building this
# tree's (before/after comparisons, back to back).
#
# With -o DIR, the measured viewer and the light node serve Go's profiles
# (PEERSCOPE_PPROF) and the script saves into DIR: the measured viewer's CPU
# profile over the interval (viewer.cpu), its heap and goroutines at the end
# (viewer.heap, viewer.goroutine), the light node's heap (light.heap), each
# one's GODEBUG=gctrace=1 lines (viewer.gc, light.gc) and /proc status and
# smaps_rollup (viewer.status, light.status; light.smaps). Profiling costs a
# little CPU: compare figures taken without -o.
#
# The machine's load average is printed at the start and the end: on a
# shared machine, re-run when it was busy.
set -euo pipefail
cd "$(dirname "$0")/.."

prof=""
bin=""
while [[ ${1:-} == -[bo] ]]; do
	case $1 in
	-b) bin=$(realpath "$2") ;;
	-o) prof=$(realpath -m "$2") && mkdir -p "$prof" ;;
	esac
	shift 2
done
secs=${1:-60}
warmup=10
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n $bin ]]; then
	echo "--- peerscope: $bin"
	cp "$bin" "$tmp/peerscope"
else
	echo "--- building peerscope"
	go build -o "$tmp/peerscope" ./cmd/peerscope
fi

echo "--- making a 2.5 Mb/s MPEG-TS (20 s, looped)"
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=1280x720:rate=30" \
	-f lavfi -i "sine=frequency=1000:sample_rate=48000:beep_factor=4" \
	-t 20 -vf "noise=alls=12:allf=t,format=yuv420p" \
	-c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline \
	-b:v 2300k -maxrate 2300k -bufsize 2300k -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 \
	-c:a libopus -b:a 96k -ac 2 -ar 48000 \
	-muxdelay 0 -muxpreload 0 -f mpegts "$tmp/stream.ts"
ffprobe -v error -show_entries format=duration,bit_rate -of compact=p=0 "$tmp/stream.ts" | sed 's/^/  MPEG-TS (with its overhead): /'

common=(--http 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0)

# start NAME ARGS...: runs peerscope in the background, its output in
# $tmp/NAME.out, its pid in $last. With -o, $env is put in its environment.
env=()
start() {
	local name=$1
	shift
	env "${env[@]}" "$tmp/peerscope" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	last=$!
	pids+=("$last")
	env=()
}

# free: a free loopback TCP port.
free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# line NAME PATTERN: waits up to 30 s for a line matching PATTERN in NAME's output.
line() {
	for _ in $(seq 300); do
		if grep -q "$2" "$tmp/$1.out" 2>/dev/null; then
			grep "$2" "$tmp/$1.out" | head -1
			return
		fi
		sleep 0.1
	done
	echo "no '$2' from $1:" >&2
	cat "$tmp/$1.out" "$tmp/$1.err" >&2
	exit 1
}

# metric BASE NAME: the value of a metric (one broadcast) on a node.
metric() { curl -fsS "$1/metrics" | awk -v m="$2" '!done && $1 ~ "^"m"[{]" {print $2; done = 1}' || true; }

echo "--- broadcaster (1 slot), measured viewer (3 slots), 3 viewers (no relaying; the third a light node)"
# 5M of upload: one slot from 1.67 to 3.33 Mb/s. The broadcaster sizes its
# slots by the bitrate it measures, which peaks at 2.67 Mb/s in this stream:
# with 4M (× 1.5 headroom) that is no slot, and it dropped the measured
# viewer every 20 s, its children with it.
start broadcaster broadcast --from "$tmp/stream.ts" --loop --upload 5M --https off --data "" "${common[@]}"
rootpid=$last
for _ in $(seq 100); do
	link=$(grep -A1 "Share this link" "$tmp/broadcaster.out" | tail -1 | tr -d ' ' || true)
	[[ $link == peerscope://* ]] && break
	sleep 0.1
done
[[ $link == peerscope://* ]] || { echo "no link from the broadcaster" >&2; cat "$tmp/broadcaster.out" "$tmp/broadcaster.err" >&2; exit 1; }

# The measured viewer: 13M of upload gives 3 slots at 2.3 to 2.9 Mb/s.
if [[ -n $prof ]]; then
	vpprof=127.0.0.1:$(free)
	env=(PEERSCOPE_PPROF="$vpprof" GODEBUG=gctrace=1)
fi
start viewer watch --upload 13M "${common[@]}" "$link"
pid=$last
base=$(line viewer "Player page:" | sed -E 's|.*(http://[0-9.:]+)/b/.*|\1|')
for _ in $(seq 300); do [[ $(metric "$base" peerscope_tree_depth) == 1 ]] && break; sleep 0.1; done
vlink=$(line viewer "Share it on" >/dev/null; grep -A1 "Share it on" "$tmp/viewer.out" | tail -1 | tr -d ' ')
for i in 1 2; do
	start "child$i" watch --upload 0 "${common[@]}" "$vlink"
	childpid=$last
done
# The light node: relays nothing, keeps no replay.
if [[ -n $prof ]]; then
	lpprof=127.0.0.1:$(free)
	env=(PEERSCOPE_PPROF="$lpprof" GODEBUG=gctrace=1)
fi
start light watch --upload 0 --no-replays "${common[@]}" "$vlink"
lightpid=$last
for _ in $(seq 600); do [[ $(metric "$base" peerscope_tree_children) == 3 ]] && break; sleep 0.1; done
echo "  measured viewer: pid $pid, depth $(metric "$base" peerscope_tree_depth), slots $(metric "$base" peerscope_tree_slots), children $(metric "$base" peerscope_tree_children)"
[[ $(metric "$base" peerscope_tree_children) == 3 ]] || { echo "the measured viewer has not 3 children" >&2; exit 1; }

sleep "$warmup"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
t0=$(date +%s.%N)
c0=$(ticks "$pid")
rc0=$(ticks "$rootpid")
cc0=$(ticks "$childpid")
lc0=$(ticks "$lightpid")
b0=$(metric "$base" peerscope_chunk_bytes_sent_total)
n0=$(metric "$base" peerscope_chunks_sent_total)
r0=$(metric "$base" peerscope_chunk_bytes_received_total)
echo "--- measuring for $secs s"
if [[ -n $prof ]]; then
	curl -fsS -o "$prof/viewer.cpu" "http://$vpprof/debug/pprof/profile?seconds=$secs"
else
	sleep "$secs"
fi
t1=$(date +%s.%N)
c1=$(ticks "$pid")
rc1=$(ticks "$rootpid")
cc1=$(ticks "$childpid")
lc1=$(ticks "$lightpid")
b1=$(metric "$base" peerscope_chunk_bytes_sent_total)
n1=$(metric "$base" peerscope_chunks_sent_total)
r1=$(metric "$base" peerscope_chunk_bytes_received_total)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
lightanon=$(awk '/^RssAnon/ {print $2}' "/proc/$lightpid/status")
pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
lightpss=$(awk '/^Pss:/ {print $2}' "/proc/$lightpid/smaps_rollup")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
children=$(metric "$base" peerscope_tree_children)
leafrss=$(awk '/^VmRSS/ {print $2}' "/proc/$childpid/status")
lightrss=$(awk '/^VmRSS/ {print $2}' "/proc/$lightpid/status")
lighthwm=$(awk '/^VmHWM/ {print $2}' "/proc/$lightpid/status")
if [[ -n $prof ]]; then
	curl -fsS -o "$prof/viewer.heap" "http://$vpprof/debug/pprof/heap"
	curl -fsS -o "$prof/viewer.goroutine" "http://$vpprof/debug/pprof/goroutine?debug=1"
	curl -fsS -o "$prof/light.heap" "http://$lpprof/debug/pprof/heap"
	cat "/proc/$pid/status" "/proc/$pid/smaps_rollup" >"$prof/viewer.status"
	cat "/proc/$lightpid/status" "/proc/$lightpid/smaps_rollup" >"$prof/light.status"
	cp "/proc/$lightpid/smaps" "$prof/light.smaps"
	grep '^gc ' "$tmp/viewer.err" >"$prof/viewer.gc" || true
	grep '^gc ' "$tmp/light.err" >"$prof/light.gc" || true
	cp "$tmp/peerscope" "$prof/peerscope"
	echo "  profiles in $prof (go tool pprof $prof/peerscope $prof/viewer.cpu)"
fi

awk -v c0="$c0" -v c1="$c1" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v b0="$b0" -v b1="$b1" -v n0="$n0" -v n1="$n1" \
	-v r0="$r0" -v r1="$r1" -v rss="$rss" -v hwm="$hwm" -v ch="$children" \
	-v rc0="$rc0" -v rc1="$rc1" -v cc0="$cc0" -v cc1="$cc1" -v leafrss="$leafrss" \
	-v lc0="$lc0" -v lc1="$lc1" -v lightrss="$lightrss" -v lighthwm="$lighthwm" -v anon="$anon" -v lightanon="$lightanon" \
	-v pss="$pss" -v lightpss="$lightpss" 'BEGIN {
	dt = t1 - t0
	printf "measured viewer over %.1f s, relaying to %d children:\n", dt, ch
	printf "  stream in:  %.2f Mb/s of chunk payload\n", (r1 - r0) * 8 / dt / 1e6
	printf "  relayed:    %.2f Mb/s to its children (%.2f Mb/s each), %d chunks\n", (b1 - b0) * 8 / dt / 1e6, (b1 - b0) * 8 / dt / 1e6 / 3, n1 - n0
	printf "  CPU:        %.2f %% of one core (%.2f s of CPU)\n", (c1 - c0) / hz / dt * 100, (c1 - c0) / hz
	printf "  memory:     VmRSS %.1f MiB, VmHWM %.1f MiB (anonymous %.1f MiB, the rest pages of the binary; Pss %.1f MiB)\n", rss / 1024, hwm / 1024, anon / 1024, pss / 1024
	printf "for comparison, CPU over the same interval: the broadcaster (reads, packages, signs, sends to 1 child) %.2f %%, a leaf viewer %.2f %%\n", \
		(rc1 - rc0) / hz / dt * 100, (cc1 - cc0) / hz / dt * 100
	printf "and the leaf viewer'"'"'s VmRSS %.1f MiB\n", leafrss / 1024
	printf "light node (--upload 0 --no-replays): CPU %.2f %% of one core, VmRSS %.1f MiB, VmHWM %.1f MiB (anonymous %.1f MiB; Pss %.1f MiB)\n", \
		(lc1 - lc0) / hz / dt * 100, lightrss / 1024, lighthwm / 1024, lightanon / 1024, lightpss / 1024
}'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
