#!/usr/bin/env bash
# Instructions per event on the event path of each strategy, and the ratio to
# `never`, counted by valgrind (callgrind): exact and repeatable, unlike
# times on a shared machine. Two runs per strategy (N1 and N2 events); the
# difference divided by N2 - N1 removes start-up and set-up costs. Hash maps
# are seeded at random, so counts move by a few instructions per event from
# run to run: each figure is the median of three measurements.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (Debian package valgrind)"; exit 1; }
cargo build --release --quiet --example event_path
bin=target/release/examples/event_path
n1=20000
n2=60000
count() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
    grep -E '^(summary|totals):' "$out" | head -n 1 | awk '{print $2}'
    rm -f "$out"
}
printf '%-12s %14s %10s\n' strategy instr/event 'vs never'
base=""
per_event() {
    local a b
    a=$(count "$1" "$n1")
    b=$(count "$1" "$n2")
    echo $(( (b - a) / (n2 - n1) ))
}
for s in never time-based event-based hybrid-lock background coalesce; do
    per=$( { per_event "$s"; per_event "$s"; per_event "$s"; } | sort -n | sed -n 2p)
    [ -n "$base" ] || base=$per
    printf '%-12s %14d %10s\n' "$s" "$per" "$(awk -v p="$per" -v b="$base" 'BEGIN{printf "%.4fx", p/b}')"
done
