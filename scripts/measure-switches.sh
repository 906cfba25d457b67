#!/usr/bin/env bash
# Runs scripts/measure-relay.sh -b BINARY SECONDS and adds what it does not
# print: the voluntary (and involuntary) context switches of the relaying
# viewer and of the light node, summed over their threads
# (/proc/PID/task/*/status), over 60 s of the measured interval: each is a
# wake-up of a thread.
#
#   scripts/measure-switches.sh BINARY [SECONDS]     (default 90; at least 70)
#
# Never run two at once, nor beside another measure-relay.sh.
set -euo pipefail
bin=$1 secs=${2:-90}
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/measure-relay.sh -b "$bin" "$secs" >"$log" 2>&1 &
mpid=$!
for _ in $(seq 600); do grep -q -- "--- measuring for" "$log" 2>/dev/null && break; sleep 0.5; done
vpid=$(grep -o 'measured viewer: pid [0-9]*' "$log" | awk '{print $4}')
lpid=$(pgrep -P "$mpid" -f -- 'watch --upload 0 --no-replays' | head -1)
sw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {v+=$2} /^nonvoluntary_ctxt_switches/ {n+=$2} END {print v, n}'; }
sleep 5
read -r v0 nv0 < <(sw "$vpid")
read -r l0 nl0 < <(sw "$lpid")
sleep 60
read -r v1 nv1 < <(sw "$vpid")
read -r l1 nl1 < <(sw "$lpid")
wait "$mpid" || true
cat "$log"
echo "switches over 60 s: viewer (pid $vpid) voluntary $((v1 - v0)) ($(((v1 - v0) / 60))/s) involuntary $((nv1 - nv0)); light (pid $lpid) voluntary $((l1 - l0)) ($(((l1 - l0) / 60))/s) involuntary $((nl1 - nl0))"
