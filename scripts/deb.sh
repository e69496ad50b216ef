#!/usr/bin/env bash
# Builds the Debian package: target/debian/personafs_<version>-1_<arch>.deb.
# The man page, the shell completions and the systemd units (pointing at /usr/bin/personafs)
# are generated from the release binary into target/release/deb-assets, which the
# [package.metadata.deb] assets of Cargo.toml name. Needs cargo-deb
# (cargo install cargo-deb --locked).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 1
fi
target="${CARGO_TARGET_DIR:-target}"
echo "building personafs in release mode (the first build takes 3 to 4 minutes on an idle 2-core machine)" >&2
cargo build --release --quiet
assets="$target/release/deb-assets"
rm -rf "$assets"
mkdir -p "$assets"
bin="$target/release/personafs"
"$bin" man | gzip -9n > "$assets/personafs.1.gz"
"$bin" completions bash > "$assets/personafs.bash"
"$bin" completions zsh > "$assets/_personafs"
"$bin" completions fish > "$assets/personafs.fish"
# Installed by the package: the binary is /usr/bin/personafs, and no copying is needed.
sed -e 's#/usr/local/bin/personafs#/usr/bin/personafs#g' \
    -e 's#^\# Install: .*#\# Enable: systemctl enable --now personafs#' \
    docs/systemd/personafs.service > "$assets/personafs.service"
sed -e 's#/usr/local/bin/personafs#/usr/bin/personafs#g' \
    -e 's#^\# Install: .*#\# Enable: systemctl --user enable --now personafs#' \
    -e '/^\#          systemctl --user enable --now personafs$/d' \
    docs/systemd/personafs-user.service > "$assets/personafs-user.service"
# The release profile keeps debug info for profiling; the package does not need it.
cargo deb --no-build --strip "$@"
