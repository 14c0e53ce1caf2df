#!/usr/bin/env bash
# The whole test suite: formatting, lints, docs, benches build, and every test
# (the Redis ones against a real redis-server that the tests start themselves),
# for the library and the worker (`worker/`, the whole workspace).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
    echo "redis-server not found: installing Debian's redis-server and redis-tools packages"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools
    fi
fi

# The worker's deployment test runs a Python producer (redis-py) from a
# virtual environment it creates itself: it needs python3 with the venv module.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python3 with venv/ensurepip not found: installing Debian's python3 and python3-venv packages"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
    fi
fi

cargo fmt --all -- --check
# No import circles between the files of src/.
python3 scripts/import-circles.py
cargo clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
cargo bench --all-features --no-run

# Every test, then one line saying what passed, counted from cargo test's
# own "test result:" lines (unit, integration and doc tests). The exit code
# is cargo test's.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-features 2>&1 | tee "$log" || status=$?
count() {
    sed -nE "s/^test result: .* ([0-9]+) $1;.*/\1/p" "$log" | awk '{ n += $1 } END { print n + 0 }'
}
suites=$(grep -c '^test result:' "$log" || true)
if [ "$status" -eq 0 ]; then
    echo "test-all: fmt, clippy, rustdoc, benches ok; $(count passed) passed, $(count failed) failed, $(count ignored) ignored in $suites test binaries"
else
    echo "test-all: FAILED (cargo test exit $status): $(count passed) passed, $(count failed) failed in $suites test binaries before it stopped"
fi
exit "$status"
