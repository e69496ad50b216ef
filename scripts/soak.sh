#!/usr/bin/env bash
# The long variants of the reliability tests (issue 7), which CI runs only in short form:
#   - rsync -a of 100 inquiries with 20 % of API and file requests failing or dropped;
#   - 64 concurrent readers over 500 files for 60 s (bytes, fds, memory);
#   - the rest of tests/faults.rs, tests/hostile.rs (with 4096 proptest cases per property)
#     and tests/security.rs.
# Usage: scripts/soak.sh [ROUNDS]   (default 1; each round runs everything again)
# Prints each test's wall time and the load test's figures; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1}"

if [ ! -e /dev/fuse ]; then
  echo "soak: /dev/fuse is missing; these tests mount real filesystems" >&2
  exit 1
fi
# Release builds: the soak measures the product, not the debug allocator.
cargo build --release --tests --quiet
# Mounts of other processes on this machine are not ours to judge: compare before and after.
mounts_before="$(grep ' fuse' /proc/mounts | cut -d' ' -f2 | sort || true)"
export PERSONAFS_SLOW_TESTS=1 PROPTEST_CASES="${PROPTEST_CASES:-4096}"

for round in $(seq 1 "$rounds"); do
  echo "== soak round $round/$rounds"
  for target in faults hostile security; do
    start=$(date +%s)
    # One test at a time: the load test measures this process's fds and memory.
    log="$(mktemp)"
    set +e
    cargo test --release --test "$target" -- --test-threads=1 --nocapture >"$log" 2>&1
    status=$?
    set -e
    grep -E '^(test |load:|test result)|panicked|FAILED' "$log" || true
    [ "$status" = 0 ] || tail -50 "$log"
    rm -f "$log"
    echo "   $target: $(( $(date +%s) - start )) s, exit $status"
    [ "$status" = 0 ] || exit "$status"
  done
done
left="$(comm -13 <(echo "$mounts_before") <(grep ' fuse' /proc/mounts | cut -d' ' -f2 | sort || true))"
if [ -n "$left" ]; then
  echo "soak: test mounts left behind: $left" >&2
  exit 1
fi
echo "soak: all rounds passed"
