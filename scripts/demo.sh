#!/usr/bin/env bash
# The demo mount: builds personafs and mounts a generated Persona organization (the embedded
# mock server: no API key, no network) at MOUNTPOINT (default /tmp/personafs-demo).
# Usage: scripts/demo.sh [MOUNTPOINT] [--inquiries N]
set -euo pipefail
cd "$(dirname "$0")/.."
mp="${1:-/tmp/personafs-demo}"
shift || true

if [ "$(id -u)" != 0 ] && ! command -v fusermount3 >/dev/null; then
  echo "personafs needs fuse3 to mount as a normal user: sudo apt-get install fuse3" >&2
  exit 1
fi
bin="${CARGO_TARGET_DIR:-target}/release/personafs"
# The first build compiles every dependency: say so, and let cargo show its progress.
if [ ! -x "$bin" ]; then
  echo "building personafs in release mode: the first build takes 3 to 4 minutes on an idle 2-core machine" >&2
  cargo build --release
else
  echo "building personafs in release mode (seconds when little changed)" >&2
  cargo build --release --quiet
fi
mkdir -p "$mp"
"$bin" demo "$mp" "$@"
echo "mounted the demo at $mp — try: ls -l $mp/inquiries | head"
echo "unmount with: $bin unmount $mp"
