#!/usr/bin/env bash
# The Redis server's instructions per event, counted by valgrind (callgrind)
# on redis-server itself: exact and repeatable, unlike times on a shared
# machine. For each mode, two fresh servers under callgrind process N1 and N2
# events of the Redis bench's mix (examples/redis_events.rs); the difference
# divided by N2 - N1 removes start-up, script loading and set-up. The same is
# done for `redis-benchmark -t set`, with one connection and with -P 32, so
# that each mode's ratio to plain SETs is a count, not a time:
#
#   unbatched `process`        vs  redis-benchmark -c 1 -t set
#   `process_batch` of 100     vs  redis-benchmark -P 32 -t set
#
# A ratio here is SET instructions / event instructions: the events/s one
# Redis core would sustain, relative to SET/s, when the server is the
# bottleneck. It leaves out the kernel, which the bench
# (`cargo bench --features redis --bench redis`) includes; the client's own
# instructions per event (`redis_events` under callgrind) come next.
#
# Then what Redis's Lua charges for the pieces a script is made of (the
# difference between two tiny scripts run by `redis-benchmark EVALSHA`):
# an argument to EVALSHA, a `redis.call`, a value a call returns, a number
# passed to a call (converted to text), a `tonumber` of a string.
set -euo pipefail
# A failure inside $(...) stops the script too.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
for tool in valgrind redis-server redis-benchmark redis-cli; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool not found: install Debian's valgrind, redis-server and redis-tools" >&2
        exit 1
    fi
done
cargo build --release --quiet --features redis --example redis_events
bin="${CARGO_TARGET_DIR:-target}/release/examples/redis_events"
if [ ! -x "$bin" ]; then
    echo "redis_events was not built at $bin" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# ready PORT: waits (at most 20 s) until the server on PORT answers.
ready() {
    local i
    for i in $(seq 1 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "redis-server on port $1 did not start" >&2
    return 1
}
# stop PORT PID: shuts the server down and waits for it.
stop() {
    redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true
    wait "$2" || true
}
# total FILE: the instructions a callgrind output file counted (fails when
# there is no count).
total() {
    local n
    n=$(grep -E '^(summary|totals):' "$1" | head -n 1 | awk '{print $2}')
    if [ -z "$n" ]; then
        echo "no instruction count in $1" >&2
        return 1
    fi
    echo "$n"
}
# server_instructions COMMAND...: runs COMMAND (with $PORT set) against a
# fresh redis-server under callgrind and prints the server's instructions.
server_instructions() {
    local port out pid
    port=$(free_port)
    out="$work/cg.$port"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        redis-server --port "$port" --save '' --appendonly no >"$work/log.$port" 2>&1 &
    pid=$!
    ready "$port"
    if ! PORT=$port "$@" >/dev/null; then
        stop "$port" "$pid"
        echo "failed: $*" >&2
        return 1
    fi
    stop "$port" "$pid"
    total "$out"
}
# The workloads: N items each, against $PORT.
unbatched() { "$bin" "redis://127.0.0.1:$PORT" "$1"; }
batched() { "$bin" "redis://127.0.0.1:$PORT" "$1" 100; }
set_c1() { redis-benchmark -p "$PORT" -q -t set -c 1 -n "$1"; }
set_p32() { redis-benchmark -p "$PORT" -q -t set -P 32 -n "$1"; }
# per_item WORKLOAD N1 N2: server instructions per item between N1 and N2.
per_item() {
    local a b
    a=$(server_instructions "$1" "$2")
    b=$(server_instructions "$1" "$3")
    echo $(( (b - a) / ($3 - $2) ))
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
one=$(per_item unbatched 500 1500)
c1=$(per_item set_c1 5000 15000)
batch=$(per_item batched 5000 15000)
p32=$(per_item set_p32 50000 150000)
# The client's side: `redis_events` itself under callgrind, against a
# plain server, N1 and N2 events.
client_instructions() {
    local port out pid
    port=$(free_port)
    out="$work/client.$port"
    redis-server --port "$port" --save '' --appendonly no >"$work/log.$port" 2>&1 &
    pid=$!
    ready "$port"
    if ! valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" "redis://127.0.0.1:$port" "$@" >/dev/null 2>"$work/client.err"; then
        stop "$port" "$pid"
        echo "failed: $bin $*: $(tail -n 3 "$work/client.err")" >&2
        return 1
    fi
    stop "$port" "$pid"
    total "$out"
}
# client_per_event N1 N2 [BATCH]: the client's instructions per event.
client_per_event() {
    local a b
    a=$(client_instructions "$1" ${3:-})
    b=$(client_instructions "$2" ${3:-})
    echo $(( (b - a) / ($2 - $1) ))
}
client_one=$(client_per_event 1000 3000)
client_batch=$(client_per_event 5000 15000 100)
printf '%-28s %18s %12s\n' 'server work per item' 'instructions' 'SET ratio'
printf '%-28s %18d %12s\n' 'process (unbatched)' "$one" "$(ratio "$c1" "$one")"
printf '%-28s %18d %12s\n' 'redis-benchmark -c 1 SET' "$c1" '1.000'
printf '%-28s %18d %12s\n' 'process_batch of 100' "$batch" "$(ratio "$p32" "$batch")"
printf '%-28s %18d %12s\n' 'redis-benchmark -P 32 SET' "$p32" '1.000'
echo
printf '%-28s %18s\n' 'client work per event' 'instructions'
printf '%-28s %18d\n' 'process (unbatched)' "$client_one"
printf '%-28s %18d\n' 'process_batch of 100' "$client_batch"

# Tiny scripts: evalsha_run N runs $SCRIPT with $ARGS N times, on a hash
# `h` holding 10 fields.
evalsha_run() {
    local sha
    redis-cli -p "$PORT" hset h f1 11 f2 12 f3 13 f4 14 f5 15 f6 16 f7 17 f8 18 f9 19 f10 20 >/dev/null
    sha=$(redis-cli -p "$PORT" script load "$SCRIPT")
    # shellcheck disable=SC2086
    redis-benchmark -p "$PORT" -q -c 1 -n "$1" evalsha "$sha" $ARGS
}
lua() { SCRIPT=$1 ARGS=$2 per_item evalsha_run 1000 3000; }
ten() { local i out=''; for i in 1 2 3 4 5 6 7 8 9 10; do out="$out $1"; done; echo "$out"; }
forty=$(for i in $(seq 1 40); do printf ' a%d' "$i"; done)
base=$(lua 'return 1' '0')
args=$(lua 'return 1' "0$forty")
calls=$(lua "$(ten "redis.call('EXISTS', 'nokey')")
return 1" '0')
read1=$(lua "local v = redis.call('HMGET', 'h', 'f1') return 1" '0')
read10=$(lua "local v = redis.call('HMGET', 'h', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'f10') return 1" '0')
nums=$(lua "redis.call('HSET', 'h', 'f1', 1, 'f2', 2, 'f3', 3, 'f4', 4, 'f5', 5, 'f6', 6, 'f7', 7, 'f8', 8, 'f9', 9, 'f10', 10) return 1" '0')
texts=$(lua "redis.call('HSET', 'h', 'f1', '1', 'f2', '2', 'f3', '3', 'f4', '4', 'f5', '5', 'f6', '6', 'f7', '7', 'f8', '8', 'f9', '9', 'f10', '10') return 1" '0')
tonum=$(lua "local x = 0 $(ten "x = tonumber(ARGV[1])")
return 1" '0 1795963494')
tonum0=$(lua 'return 1' '0 1795963494')
echo
printf '%-46s %12s\n' "Redis's Lua, per piece" 'instructions'
printf '%-46s %12d\n' 'EVALSHA of `return 1` (the round trip)' "$base"
printf '%-46s %12d\n' 'an argument to EVALSHA' $(( (args - base) / 40 ))
printf '%-46s %12d\n' 'a redis.call (EXISTS of a missing key)' $(( (calls - base) / 10 ))
printf '%-46s %12d\n' 'a value a call returns (HMGET field)' $(( (read10 - read1) / 9 ))
printf '%-46s %12d\n' 'a number passed to a call (HSET value)' $(( (nums - texts) / 10 ))
printf '%-46s %12d\n' 'tonumber of a string' $(( (tonum - tonum0) / 10 ))
