#!/usr/bin/env bash
# Runs every test of personafs: formatting, lints, unit tests, and the end-to-end tests that
# mount real FUSE filesystems over the local mock Persona server.
# Installs what the tests need first when it can (fuse3, rsync, ffmpeg, redis-server, curl;
# needs root and apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v rsync >/dev/null || missing+=(rsync)
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} missing; some end-to-end tests will fail (apt-get install ${missing[*]})" >&2
  fi
fi
# The Debian package test needs cargo-deb (and root); without it, it is skipped outside CI.
if ! cargo deb --version >/dev/null 2>&1; then
  echo "warning: cargo-deb missing: the Debian package test is skipped (cargo install cargo-deb --locked)" >&2
fi
if [ ! -e /dev/fuse ]; then
  echo "!!!!! /dev/fuse is missing: FUSE tests will be SKIPPED (they fail under CI=true) !!!!!" >&2
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
log=$(mktemp)
alone=$(mktemp)
trap 'rm -f "$log" "$alone"' EXIT
status=0
# Every test binary is built first (the same ones as --all-targets), so the two runs below
# only run tests.
cargo test --workspace --all-targets --no-run 2>&1 | tee "$log" || status=1
if [ "$status" = 0 ]; then
  # The test binaries run one after another, and mostly wait (on TTLs, rate windows,
  # timeouts). So they run in two lines at once: tests/budget_share.rs, which measures
  # request rates over 10-second windows for minutes, then the two tests that need the
  # release build (deb.rs builds it, readme_commands.rs reuses it); and all the others.
  # budget_share runs at a higher priority (as root; elsewhere nice says it cannot and runs
  # it as is), so the others' busy moments cannot slow the mounts whose rates it measures;
  # it needs little CPU itself. The release build runs at a lower one, on the CPU the
  # others leave idle, and never beside budget_share.
  alone_tests=(budget_share deb readme_commands)
  others=()
  # Integration tests are found by cargo in tests/*.rs of each package (no [[test]] entries).
  for t in tests/*.rs crates/*/tests/*.rs; do
    name=$(basename "$t" .rs)
    [[ " ${alone_tests[*]} " == *" $name "* ]] || others+=(--test "$name")
  done
  (
    rc=0
    nice -n -10 cargo test --workspace --no-fail-fast --test budget_share || rc=1
    nice -n 10 cargo test --workspace --no-fail-fast --test deb --test readme_commands || rc=1
    exit "$rc"
  ) >"$alone" 2>&1 &
  alone_pid=$!
  cargo test --workspace --lib --bins --examples --benches "${others[@]}" --no-fail-fast 2>&1 |
    tee -a "$log" || status=1
  wait "$alone_pid" || status=1
  cat "$alone"
  cat "$alone" >>"$log"
  # Each test binary built ran, in one run or the other (none was left out of both).
  built=$(grep -c '^  Executable ' "$log" || true)
  ran=$(grep -c '^     Running ' "$log" || true)
  if [ "$built" != "$ran" ]; then
    echo "error: $built test binaries built, $ran run" >&2
    status=1
  fi
fi
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
