#!/usr/bin/env bash
# Instructions per event on the event path of each strategy, and the ratio to
# `never`, counted by valgrind (callgrind): exact and repeatable, unlike
# times on a shared machine. Two runs per strategy (N1 and N2 events); the
# difference divided by N2 - N1 removes start-up and set-up costs. Hash maps
# are seeded at random, so counts move by a few instructions per event from
# run to run: each figure is the median of three measurements.
#
# Rows: each strategy with the default `MemorySink`; `never` with a no-op
# sink (the event path without the sink's share); then parsing one JSON line
# of the same mix with `Event::from_json`, against a serde derive parse of
# the same line into borrowed `&str` fields (instructions per line).
set -euo pipefail
# A failure inside $(...) stops the script too.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "valgrind not found: installing Debian's valgrind package"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
    fi
fi
cargo build --release --quiet --example event_path
bin="${CARGO_TARGET_DIR:-target}/release/examples/event_path"
if [ ! -x "$bin" ]; then
    echo "event_path was not built at $bin" >&2
    exit 1
fi
n1=20000
n2=60000
count() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
    grep -E '^(summary|totals):' "$out" | head -n 1 | awk '{print $2}'
    rm -f "$out"
}
# per_event STRATEGY SINK: instructions per event, median of three.
per_event() {
    local i a b
    for i in 1 2 3; do
        a=$(count "$bin" "$1" "$n1" "$2")
        b=$(count "$bin" "$1" "$n2" "$2")
        echo $(( (b - a) / (n2 - n1) ))
    done | sort -n | sed -n 2p
}
printf '%-22s %14s %10s\n' 'event path' instr/event 'vs never'
base=""
for s in never time-based event-based hybrid-lock background coalesce; do
    per=$(per_event "$s" memory)
    [ -n "$base" ] || base=$per
    printf '%-22s %14d %10s\n' "$s" "$per" "$(awk -v p="$per" -v b="$base" 'BEGIN{printf "%.4fx", p/b}')"
done
printf '%-22s %14d\n' "never, no-op sink" "$(per_event never noop)"
json=$(per_event from-json memory)
serde=$(per_event serde-borrowed memory)
printf '%-22s %14d %10s\n' "Event::from_json" "$json" "$(awk -v p="$json" -v b="$serde" 'BEGIN{printf "%.4fx", p/b}')"
printf '%-22s %14d %10s\n' "serde derive, borrowed" "$serde" "1.0000x"
