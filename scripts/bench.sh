#!/usr/bin/env bash
# personafs against what users do today (scripts/peer.py: list, retrieve, download with
# 8 workers or 1; curl of a signed URL; local disk) and against the FUSE filesystems they
# would pick instead (bindfs, rclone mount, httpdirfs), side by side in one run, on the mock
# Persona server with realistic conditions. See docs/BENCHMARKS.md.
#
#   scripts/bench.sh [--quick] [--out FILE]     (JSON to FILE, default target/bench.json)
#
# Environment: BENCH_API_LATENCY_MS (80), BENCH_FILES_LATENCY_MS (30), BENCH_RATE_LIMIT (300),
# BENCH_PAIRS (5 quick, 7 full: interleaved pairs per peer comparison, the median is kept),
# BENCH_KEEP=1 keeps the work directory, BENCH_ONLY="wl_large wl_ls" runs only those groups,
# BENCH_SHARED_N (50 quick, 2000 full) and BENCH_SHARED_MOUNTS (4) size wl_shared,
# BENCH_BUDGET_N (100 quick, 600 full) and BENCH_BUDGET_WINDOW (60s: the mock's rate window;
# shorter to try the workload quickly) size wl_budget (full run only, unless BENCH_ONLY names it),
# BENCH_BIN=path uses that personafs binary instead of building a release one,
# BENCH_BASE_BIN=path adds another build of personafs (say, the last release) beside it in the
# warm tree, cold 200 MB and realistic link rows, BENCH_FLOOR=path a prebuilt floorfs.
# Missing peers (bindfs, rclone, httpdirfs) are installed with apt-get. Exit 1 when a
# workload errored or bytes differed; targets missed only show as ok=false.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
OUT=target/bench.json
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --out=*) OUT=${1#--out=} ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

API_LATENCY_MS=${BENCH_API_LATENCY_MS:-80}
FILES_LATENCY_MS=${BENCH_FILES_LATENCY_MS:-30}
RATE_LIMIT=${BENCH_RATE_LIMIT:-300}
# The mock keeps this much of the files it served in memory (docs/MOCK.md): a file sent again
# costs it no computing, as a real files host sends stored bytes from another machine.
FILES_MEMO=${BENCH_FILES_MEMO:-1GiB}
if [ "$QUICK" = 1 ]; then
  N_TREE=50          # inquiries copied by cp -r / rsync / ls -lR (issue: 200)
  BIG_FILES=1; BIG_SIZE=256MiB   # the "copy 1 GB" workload copies this much
  N_MEMORY=10000     # inquiries listed for the memory figure (issue: 50,000)
  N_SHARED=${BENCH_SHARED_N:-50}   # inquiries walked by wl_shared's mounts (issue: 2,000)
  N_BUDGET=${BENCH_BUDGET_N:-100}  # inquiries walked and copied by wl_budget (issue: 600)
  PAIRS=${BENCH_PAIRS:-5}
else
  N_TREE=200
  BIG_FILES=5; BIG_SIZE=200MiB
  N_MEMORY=50000
  N_SHARED=${BENCH_SHARED_N:-2000}
  N_BUDGET=${BENCH_BUDGET_N:-600}
  PAIRS=${BENCH_PAIRS:-7}
fi
N_LINK_TREE=50       # inquiries of the realistic link's cold cp -r
LINK_BANDWIDTH=100000000       # bytes/s per download, the realistic link's 200 MB read
LINK_TREE_BANDWIDTH=20000000   # bytes/s per download, the realistic link's cp -r
LINK_LATENCY_MS=30
N_LS=5000
# A large organization (issue #12): inquiries walked by ls -lR three times, then after a
# remount; inquiries listed by ls -l; inquiries read offline. BENCH_SCALE / BENCH_MILLION
# change the first two (to measure quickly).
# The mock builds each listed inquiry whole (about 1,800 a second here): listing a million takes
# it about 10 minutes, so --quick lists 200,000.
if [ "$QUICK" = 1 ]; then N_SCALE=${BENCH_SCALE:-20000}; else N_SCALE=${BENCH_SCALE:-100000}; fi
if [ "$QUICK" = 1 ]; then N_MILLION=${BENCH_MILLION:-200000}; else N_MILLION=${BENCH_MILLION:-1000000}; fi
N_OFFLINE=300
# The views (issue #26): by-reference-id/ listed from N_VIEWS inquiries; one day of
# N_VIEWS_DAY copied with rsync -aL; RSS with by-reference-id/ listed at N_MILLION.
if [ "$QUICK" = 1 ]; then N_VIEWS=${BENCH_VIEWS:-20000}; else N_VIEWS=${BENCH_VIEWS:-100000}; fi
N_VIEWS_DAY=${BENCH_VIEWS_DAY:-2000}
TIMEOUT=900          # no single command may take longer than this (seconds)

# The API key reaches personafs and the peer through the environment only.
export PERSONA_API_KEY=persona_sandbox_demo
BIN=${BENCH_BIN:-$ROOT/target/release/personafs}
# The FUSE floor (crates/fs/examples/floorfs.rs): the least any FUSE filesystem can do.
FLOOR=${BENCH_FLOOR:-$ROOT/target/release/examples/floorfs}
# Another build of personafs measured beside this one, where set.
BASE_BIN=${BENCH_BASE_BIN:-}
SHARED_MOUNTS=${BENCH_SHARED_MOUNTS:-4}
UTIL="python3 $ROOT/scripts/bench_util.py"
PEER="python3 $ROOT/scripts/peer.py"

# The FUSE peers come from Debian; a peer that cannot be installed makes its rows errors.
install_peers() {
  local missing=() p
  for p in bindfs rclone httpdirfs; do command -v "$p" > /dev/null || missing+=("$p"); done
  [ "${#missing[@]}" = 0 ] && return 0
  echo "installing the FUSE peers from Debian: ${missing[*]}" >&2
  local sudo=; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq "${missing[@]}" >&2 \
    || { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "${missing[@]}" >&2; } \
    || echo "could not install ${missing[*]}: their rows will be errors" >&2
}
# Only the side-by-side workloads need the FUSE peers.
case " ${BENCH_ONLY:-wl_tree} " in
  *" wl_tree "*|*" wl_large "*|*" wl_link_tree "*) install_peers ;;
esac

if [ -z "${BENCH_BIN:-}" ]; then
  echo "building (release)..." >&2
  build_start=$(date +%s)
  cargo build --release --quiet
  cargo build --release --quiet -p personafs-fs --example floorfs
  echo "built in $(( $(date +%s) - build_start )) s" >&2
fi

WORK=$(mktemp -d /tmp/personafs-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
REGISTRY=$WORK/registry       # "mount PATH" / "pid N" lines: what cleanup must undo
: > "$REGISTRY"
# rclone reads no user configuration: its remotes are given on the command line.
export RCLONE_CONFIG=$WORK/rclone.conf
: > "$RCLONE_CONFIG"

cleanup() {
  local kind what
  [ -f "$REGISTRY" ] || return 0
  # Mounts first (their daemons exit once unmounted), then the remaining processes.
  while read -r kind what; do
    if [ "$kind" = mount ] && grep -qs " $what fuse" /proc/mounts; then
      # `personafs unmount` unmounts any FUSE mount (the peers' too).
      "$BIN" unmount "$what" >/dev/null 2>&1 || umount -l "$what" 2>/dev/null || true
    fi
  done < "$REGISTRY"
  while read -r kind what; do
    if [ "$kind" = pid ] && kill -0 "$what" 2>/dev/null; then
      kill "$what" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$what" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$what" 2>/dev/null || true
    fi
  done < "$REGISTRY"
  : > "$REGISTRY"
}
# forget KIND WHAT: a mount or process this script has already undone (a pid could be reused).
forget() {
  grep -vxF "$1 $2" "$REGISTRY" > "$REGISTRY.new" || true
  mv "$REGISTRY.new" "$REGISTRY"
}
final_cleanup() {
  cleanup
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap final_cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
FS_START=$(now)
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }'; }
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
r0() { awk "BEGIN { printf \"%.0f\", $1 }"; }   # rounded, for notes
r2() { awk "BEGIN { printf \"%.2f\", $1 }"; }
# Compare two numbers with awk: holds "0.5 <= 1" → exit 0.
holds() { awk "BEGIN { exit !($1) }"; }
log() { echo "[$(date +%T)] $*" >&2; }

# start_mock NAME [mock-server flags...]: sets MOCK_API, MOCK_BASE, MOCK_FILES_HOSTPORT,
# MOCK_PID, MOCK_LARGE (ids of --large-file inquiries, in flag order).
start_mock() {
  local name=$1; shift
  local out=$WORK/$name.mock
  "$BIN" mock-server --api-latency-ms "$API_LATENCY_MS" --files-latency-ms "$FILES_LATENCY_MS" \
    --rate-limit "$RATE_LIMIT" --files-memo "$FILES_MEMO" "$@" > "$out" 2> "$out.err" &
  MOCK_PID=$!
  echo "pid $MOCK_PID" >> "$REGISTRY"
  local want=2
  for a in "$@"; do [ "$a" = --large-file ] && want=$((want + 1)); done
  for _ in $(seq 600); do
    [ "$(wc -l < "$out" 2> /dev/null || echo 0)" -ge "$want" ] && break
    kill -0 "$MOCK_PID" 2>/dev/null || { cat "$out.err" >&2; return 1; }
    sleep 0.1
  done
  MOCK_API=$(sed -n 's/^api=//p' "$out")
  local files; files=$(sed -n 's/^files=//p' "$out")
  [ -n "$MOCK_API" ] && [ -n "$files" ] || { echo "mock $name did not start" >&2; return 1; }
  MOCK_BASE=${MOCK_API%/api/v1}
  MOCK_FILES_HOSTPORT=${files#http://}
  MOCK_LARGE=$(sed -n 's/^large=\([^ ]*\) .*/\1/p' "$out")
}

stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget pid "$pid"
}

# mount_fs MP [mount flags...]: a fresh mount (fresh cache) on the current mock. Sets FS_PID,
# FS_START (when it was launched) and FS_READY (seconds until MP/inquiries answered a stat).
# personafs itself stats inquiries/ before it reports ready, and that lists every inquiry: a
# "cold" command is therefore timed from the launch of the mount (T_COLD), and its API calls
# counted from before the launch.
mount_fs() {
  local mp=$1; shift
  mkdir -p "$mp" "$mp.cache"
  FS_START=$(now)
  "$BIN" mount "$mp" --api-base "$MOCK_API" --file-host "$MOCK_FILES_HOSTPORT" \
    --cache-dir "$mp.cache" --foreground "$@" > "$mp.log" 2>&1 &
  FS_PID=$!
  echo "pid $FS_PID" >> "$REGISTRY"
  echo "mount $mp" >> "$REGISTRY"
  for _ in $(seq "${READY_TRIES:-600}"); do
    if grep -qs " $mp fuse" /proc/mounts && stat "$mp/inquiries" >/dev/null 2>&1; then
      FS_READY=$(since "$FS_START")
      return 0
    fi
    kill -0 "$FS_PID" 2>/dev/null || { cat "$mp.log" >&2; return 1; }
    sleep 0.1
  done
  echo "mount $mp did not become ready" >&2
  return 1
}

unmount_fs() {
  local mp=$1 pid=${2:-$FS_PID}
  "$BIN" unmount "$mp" >/dev/null 2>&1 || umount -l "$mp"
  wait "$pid" 2>/dev/null || true
  forget mount "$mp"; forget pid "$pid"
}

# peer_mount MP COMMAND...: a FUSE peer's daemon, run in the foreground as a job of this
# shell; returns once MP is mounted. Sets PEER_PID.
peer_mount() {
  local mp=$1; shift
  mkdir -p "$mp"
  "$@" > "$mp.log" 2>&1 &
  PEER_PID=$!
  echo "pid $PEER_PID" >> "$REGISTRY"
  echo "mount $mp" >> "$REGISTRY"
  for _ in $(seq 300); do
    grep -qs " $mp fuse" /proc/mounts && return 0
    kill -0 "$PEER_PID" 2>/dev/null || { tail -5 "$mp.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$1 did not mount $mp" >&2
  return 1
}

# stat_file FILE: its metadata, looked up outside the timing (a peer may need a moment after
# mounting before its listing is there).
stat_file() {
  for _ in $(seq 50); do stat "$1" > /dev/null 2>&1 && return 0; sleep 0.1; done
  stat "$1" > /dev/null
}

# Seconds of CPU (user + system, all threads) a process has used so far.
CLK_TCK=$(getconf CLK_TCK)
cpu_s() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.4f", ($12 + $13) / hz }'; }
median() { $UTIL median "$@"; }

# stats → STATS array: api_requests api_list api_retrieve file_get file_bytes rate_limited
read_stats() { read -r -a "$1" <<< "$($UTIL stats "$MOCK_BASE")"; }
# delta A B i: B[i] - A[i]
delta() { local -n a=$1 b=$2; echo $(( b[$3] - a[$3] )); }

vm() { awk -v k="$2:" '$1 == k { print $2 * 1024 }' "/proc/$1/status"; }  # bytes
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# same_bytes DIR_A DIR_B: identical multisets of file hashes (inquiry.json excluded).
same_bytes() {
  $UTIL hashes "$1" > "$WORK/h.a"
  $UTIL hashes "$2" > "$WORK/h.b"
  [ -s "$WORK/h.a" ] && cmp -s "$WORK/h.a" "$WORK/h.b"
}
peer_counts() { cut -d' ' -f3,5 "$1"; }  # "files=… api_requests=…" of a peer.py run
count_files() { find "$1" -type f ! -name '*.json' | wc -l; }
bytes_differ() { touch "$WORK/bytes_differ"; echo "BYTES DIFFER: $*; "; }

record() { $UTIL add "$RESULTS" "$@"; log "result: $1 ($2 s vs $3 s) ok=$5 — $6"; }
okif() { if holds "$1"; then echo true; else echo false; fi; }
# tgt LABEL CONDITION: "LABEL=true|false", for record's --target and --stretch.
tgt() { echo "$1=$(okif "$2")"; }

# Time a command into T (seconds), bounded by TIMEOUT; T_COLD = seconds since the last mount
# was launched.
timed() { local t0; t0=$(now); timeout --foreground "$TIMEOUT" "$@"; T=$(since "$t0"); T_COLD=$(since "$FS_START"); }
# Warm figures are small and the machine is shared: T = the best of 3 runs.
best3() {
  local best=
  for _ in 1 2 3; do
    timed "$@"
    if [ -z "$best" ] || holds "$T < $best"; then best=$T; fi
  done
  T=$best
}

# ---------------------------------------------------------------------------------------------
# 1. cold cp -r of N_TREE inquiries vs the peer with 8 workers (and 1); 2. rsync -a cold then
# again; 3. warm read of the cached tree vs local disk.
# Each side gets its own fresh mock of the same seed and config, so each starts with Persona's
# whole rate-limit budget (one window would make whoever runs second wait).
wl_tree() {
  local mp=$WORK/mnt-cp s0 s1
  start_mock cp --generate "$N_TREE"
  read_stats s0
  mount_fs "$mp"
  local ready=$FS_READY
  timed cp -r "$mp/inquiries" "$WORK/cp"
  local t_cp=$T_COLD
  read_stats s1
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  local files; files=$(count_files "$WORK/cp")
  local api; api=$(delta s0 s1 0)
  local gets; gets=$(delta s0 s1 3)
  local mbytes; mbytes=$(mb "$(delta s0 s1 4)")

  start_mock peer8 --generate "$N_TREE"
  timed $PEER --api-base "$MOCK_API" --workers 8 --out "$WORK/peer8" > "$WORK/peer8.txt"
  local t_p8=$T
  stop_pid "$MOCK_PID"
  start_mock peer1 --generate "$N_TREE"
  timed $PEER --api-base "$MOCK_API" --workers 1 --out "$WORK/peer1" > "$WORK/peer1.txt"
  local t_p1=$T
  stop_pid "$MOCK_PID"

  local notes="$N_TREE inquiries, $files files, $mbytes MiB; personafs (from mount launch; ready after $(r2 "$ready") s): $api API calls, $gets downloads, $(r0 "$t_cp * 1000 / $files") ms/file; peer: $(peer_counts "$WORK/peer8.txt")"
  local ok; ok=$(okif "$t_cp <= $t_p8")
  same_bytes "$WORK/cp" "$WORK/peer8" || { notes="$(bytes_differ cp vs peer8)$notes"; ok=false; }
  record "cold cp -r, $N_TREE inquiries, vs 8-worker peer" "$t_cp" "$t_p8" "ratio ≤ 1.0" "$ok" "$notes"
  ok=true
  same_bytes "$WORK/peer1" "$WORK/peer8" || { notes="$(bytes_differ peer1 vs peer8)"; ok=false; }
  record "(info) the same vs 1-worker peer" "$t_cp" "$t_p1" "–" "$ok" "sequential peer: $(peer_counts "$WORK/peer1.txt"), $(r0 "$t_p1 * 1000 / $files") ms/file"
  rm -rf "$WORK/peer1"

  # rsync: a fresh mount and mock again (cold), then the same rsync on the same mount.
  mp=$WORK/mnt-rsync
  start_mock rsync --generate "$N_TREE"
  read_stats s0
  mount_fs "$mp"
  timed rsync -a "$mp/inquiries/" "$WORK/rsync/"
  local t_r1=$T_COLD
  read_stats s1
  sync   # the 1st run's 2 × 142 MiB of writes are not the 2nd run's to flush
  timed rsync -a "$mp/inquiries/" "$WORK/rsync/"
  local t_r2=$T s2
  read_stats s2
  local gets2; gets2=$(delta s1 s2 3)
  notes="1st (from mount launch): $(delta s0 s1 0) API calls, $(delta s0 s1 3) downloads; 2nd: $(delta s1 s2 0) API calls, $gets2 downloads"
  ok=$(okif "$t_r2 <= 0.05 * $t_r1 && $gets2 == 0")
  same_bytes "$WORK/rsync" "$WORK/peer8" || { notes="$(bytes_differ rsync vs peer8)$notes"; ok=false; }
  record "rsync -a again (personafs = 2nd run, peer = 1st run)" "$t_r2" "$t_r1" "ratio ≤ 0.05, 0 downloads" "$ok" "$notes"

  warm_tree "$mp" "$mbytes"
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  rm -rf "$WORK/cp" "$WORK/rsync" "$WORK/peer8" "$mp.cache"
}

# 3. Warm read of every file of the cached mount against the same files on local disk (read
# before, so in the page cache: the fastest local disk can be), and the same for bindfs over
# the local copy and an rclone mount of it with a full, warmed VFS cache. The sides take
# turns (who goes first alternates), the subjects too; each keeps the median of PAIRS runs.
tree_read() { timed find "$1" -type f -exec cat {} + > /dev/null; }
warm_tree() {
  local mp=$1 mbytes=$2 local_dir=$WORK/rsync s0 s1
  local -A dir=() fs_t=() disk_t=()
  local subjects=(personafs) s i
  dir[personafs]=$mp/inquiries
  local bind_mp=$WORK/mnt-bindfs rclone_mp=$WORK/mnt-rclone-tree bind_pid= rclone_pid=
  local floor_mp=$WORK/mnt-floor floor_pid=
  [ -x "$FLOOR" ] || cargo build --release --quiet -p personafs-fs --example floorfs || true
  if [ -x "$FLOOR" ] && peer_mount "$floor_mp" "$FLOOR" "$local_dir" "$floor_mp"; then
    floor_pid=$PEER_PID; dir[floor]=$floor_mp; subjects+=(floor)
  fi
  if command -v bindfs > /dev/null && peer_mount "$bind_mp" bindfs -f "$local_dir" "$bind_mp"; then
    bind_pid=$PEER_PID; dir[bindfs]=$bind_mp; subjects+=(bindfs)
  fi
  if command -v rclone > /dev/null && peer_mount "$rclone_mp" rclone mount "$local_dir" \
    "$rclone_mp" --vfs-cache-mode full --cache-dir "$rclone_mp.cache"; then
    rclone_pid=$PEER_PID; dir[rclone]=$rclone_mp; subjects+=(rclone)
    # Warmed: every file read through the mount once fills rclone's VFS cache.
    find "$rclone_mp" -type f -exec cat {} + > /dev/null
  fi
  local base_mp=$WORK/mnt-base base_pid=
  if [ -n "$BASE_BIN" ] && BIN=$BASE_BIN mount_fs "$base_mp"; then
    base_pid=$FS_PID; dir[base]=$base_mp/inquiries; subjects+=(base)
    # Warmed as personafs's own mount was: every file read once.
    find "$base_mp/inquiries" -type f -exec cat {} + > /dev/null
  fi
  cat "$local_dir"/*/*/* > /dev/null 2>&1 || true
  read_stats s0
  for i in $(seq "$PAIRS"); do
    for s in "${subjects[@]}"; do
      if (( i % 2 )); then
        tree_read "${dir[$s]}"; fs_t[$s]+=" $T"; tree_read "$local_dir"; disk_t[$s]+=" $T"
      else
        tree_read "$local_dir"; disk_t[$s]+=" $T"; tree_read "${dir[$s]}"; fs_t[$s]+=" $T"
      fi
    done
  done
  read_stats s1
  local -A ratio=() t_fs=() t_disk=() same=()
  for s in "${subjects[@]}"; do
    t_fs[$s]=$(median ${fs_t[$s]}); t_disk[$s]=$(median ${disk_t[$s]})
    ratio[$s]=$(calc "${t_fs[$s]} / ${t_disk[$s]}")
    if same_bytes "${dir[$s]}" "$WORK/peer8"; then same[$s]=1; else same[$s]=0; fi
  done
  [ -n "$bind_pid" ] && unmount_fs "$bind_mp" "$bind_pid"
  [ -n "$base_pid" ] && { unmount_fs "$base_mp" "$base_pid"; rm -rf "$base_mp.cache"; }
  [ -n "$floor_pid" ] && { kill "$floor_pid"; wait "$floor_pid" 2>/dev/null; forget mount "$floor_mp"; forget pid "$floor_pid"; }
  [ -n "$rclone_pid" ] && unmount_fs "$rclone_mp" "$rclone_pid"
  rm -rf "$rclone_mp.cache"

  local how="median of $PAIRS pairs taking turns (find -type f -exec cat)"
  local peers=("bindfs" "rclone mount --vfs-cache-mode full (warmed)") k=0 ok notes
  for s in bindfs rclone; do
    if [ -n "${ratio[$s]:-}" ]; then
      notes="$how; $mbytes MiB; $(r0 "$mbytes / ${t_fs[$s]}") vs $(r0 "$mbytes / ${t_disk[$s]}") MiB/s"
      ok=true
      [ "${same[$s]}" = 1 ] || { notes="$(bytes_differ "$s" vs peer8)$notes"; ok=false; }
      record "warm read of the cached tree, $s vs local disk" "${t_fs[$s]}" "${t_disk[$s]}" \
        "– (peer: ${peers[$k]})" "$ok" "$notes" --subject "$s"
    else
      record "warm read of the cached tree, $s vs local disk" - - "– (peer)" false \
        "ERROR: $s could not be installed or mounted" --subject "$s"
    fi
    k=$((k + 1))
  done

  # The floor: a filesystem on the same fuser and kernel settings that answers everything
  # from memory and keeps a backing per file. What it costs over local disk, no FUSE
  # filesystem can save on this machine.
  if [ -n "${ratio[floor]:-}" ]; then
    notes="$how; $mbytes MiB; the least a FUSE filesystem costs: every answer from memory, a passthrough backing kept per file (crates/fs/examples/floorfs.rs)"
    ok=true
    [ "${same[floor]}" = 1 ] || { notes="$(bytes_differ floor vs peer8)$notes"; ok=false; }
    record "(info) warm read of the cached tree, the FUSE floor vs local disk" "${t_fs[floor]}" "${t_disk[floor]}" \
      "–" "$ok" "$notes" --subject floor
  fi

  if [ -n "${ratio[base]:-}" ]; then
    notes="$how; $mbytes MiB; $BASE_BIN, its own mount and cache on the same mock, warmed by one read"
    ok=true
    [ "${same[base]}" = 1 ] || { notes="$(bytes_differ base vs peer8)$notes"; ok=false; }
    record "(info) warm read of the cached tree, the base build vs local disk" "${t_fs[base]}" "${t_disk[base]}" \
      "–" "$ok" "$notes" --subject base
  fi

  # The floor is what no FUSE filesystem can save; personafs is held to it, not to local disk.
  notes="$how: $(delta s0 s1 0) API calls, $(delta s0 s1 3) downloads (all subjects); $mbytes MiB; $(r0 "$mbytes / ${t_fs[personafs]}") vs $(r0 "$mbytes / ${t_disk[personafs]}") MiB/s"
  ok=$(okif "${ratio[floor]:-0} > 0 && ${ratio[personafs]} <= 1.1 * ${ratio[floor]:-0}")
  [ "${same[personafs]}" = 1 ] || { notes="$(bytes_differ warm mount vs peer8)$notes"; ok=false; }
  local vs_bindfs="ratio ≤ 0.5× bindfs's ratio (${ratio[bindfs]:-not measured})"
  record "warm read of the cached tree vs local disk" "${t_fs[personafs]}" "${t_disk[personafs]}" \
    "ratio ≤ 1.1× the floor's ratio (${ratio[floor]:-not measured})" "$ok" "$notes" \
    --target "$(tgt "$vs_bindfs" "${ratio[bindfs]:-0} > 0 && ${ratio[personafs]} <= 0.5 * ${ratio[bindfs]:-0}")"
}

# ---------------------------------------------------------------------------------------------
# 4. 200 MB cold vs curl of its signed URL, and rclone mount :http: and httpdirfs --cache vs
# curl of the same bytes from `rclone serve http`; the CPU each daemon spends per GB; 5. the
# same warm vs local disk; 6. time to first byte of an uncached 50 MB file vs one files-host
# request; 12. the same 200 MB over a realistic link (100 MB/s per download).
curl_url() {  # curl_url URL ARGS...: the URL (it carries a token) goes through stdin, not argv
  local url=$1; shift
  printf 'url = "%s"\n' "$url" | curl -sS --fail -K - "$@"
}
# curl_cold URL: curl of URL to $WORK/large.curl after `sync`; T = wall seconds, CPU = its CPU
# seconds (user + system).
curl_cold() {
  rm -f "$WORK/large.curl"
  sync
  local TIMEFORMAT='%R %U %S' u s
  { time curl_url "$1" -o "$WORK/large.curl" 2> "$WORK/curl.err"; } 2> "$WORK/curl.time" \
    || { cat "$WORK/curl.err" >&2; return 1; }
  read -r T u s < "$WORK/curl.time"
  CPU=$(calc "$u + $s")
}
# cold_read SUBJECT: one cold read (cp) of the 200 MB file through SUBJECT on a fresh mount
# with a fresh cache, its metadata looked up first (outside the timing, as for curl), after
# `sync` (both sides write 200 MB to the same disk). T = seconds, CPU = the daemon's CPU
# seconds during the copy; bytes compared with $WORK/srv/large.pdf.
cold_read() {
  local s=$1 mp=$WORK/mnt-cold-$1 file pid c0
  rm -rf "$mp.cache" "$WORK/large.fs"
  case $s in
    personafs)
      mount_fs "$mp"; pid=$FS_PID; file=$mp/inquiries/$BIG/document/$BIG_NAME ;;
    base)
      BIN=$BASE_BIN mount_fs "$mp"; pid=$FS_PID; file=$mp/inquiries/$BIG/document/$BIG_NAME ;;
    rclone)
      peer_mount "$mp" rclone mount :http: "$mp" --http-url "$SRV_URL" \
        --vfs-cache-mode full --cache-dir "$mp.cache"
      pid=$PEER_PID; file=$mp/large.pdf ;;
    httpdirfs)
      mkdir -p "$mp.cache"
      peer_mount "$mp" httpdirfs -f --cache --cache-location "$mp.cache" "$SRV_URL" "$mp"
      pid=$PEER_PID; file=$mp/large.pdf ;;
  esac
  stat_file "$file"
  sync
  read_stats COLD_S0
  c0=$(cpu_s "$pid")
  timed cp "$file" "$WORK/large.fs"
  CPU=$(calc "$(cpu_s "$pid") - $c0")
  read_stats COLD_S1
  if [ "$s" = personafs ]; then
    PF_GETS=$(delta COLD_S0 COLD_S1 3); PF_FETCHED=$(mb "$(delta COLD_S0 COLD_S1 4)")
  fi
  cmp -s "$WORK/large.fs" "$WORK/srv/large.pdf" || C_BAD[$s]=1
  unmount_fs "$mp" "$pid"
  rm -rf "$mp.cache" "$WORK/large.fs"
}
# cold_pair SUBJECT URL: one pair (SUBJECT, curl of URL), the side that goes first
# alternating with PAIR; appends to C_FS, C_CURL, C_FSCPU, C_CURLCPU [SUBJECT] (C_BAD[SUBJECT]
# is set when the bytes differed).
cold_pair() {
  local s=$1 url=$2
  if (( PAIR % 2 )); then
    cold_read "$s"; C_FS[$s]+=" $T"; C_FSCPU[$s]+=" $CPU"
    curl_cold "$url"; C_CURL[$s]+=" $T"; C_CURLCPU[$s]+=" $CPU"
  else
    curl_cold "$url"; C_CURL[$s]+=" $T"; C_CURLCPU[$s]+=" $CPU"
    cold_read "$s"; C_FS[$s]+=" $T"; C_FSCPU[$s]+=" $CPU"
  fi
}
# cpu_per_gb SECONDS: CPU seconds per GB (10^9 bytes) of the 200 MiB file.
cpu_per_gb() { calc "$1 / ($BIG_BYTES / 1e9)"; }
wl_large() {
  start_mock large --large-file 200MiB --large-file 50MiB
  local small info url big_url s0 s1
  BIG=$(sed -n 1p <<< "$MOCK_LARGE"); small=$(sed -n 2p <<< "$MOCK_LARGE")
  info=$($UTIL large-file "$MOCK_API" "$BIG")
  BIG_NAME=$(sed -n 1p <<< "$info"); big_url=$(sed -n 2p <<< "$info"); url=$big_url
  # The same bytes for rclone serve http (the peers' server and their curl).
  mkdir -p "$WORK/srv"
  curl_url "$url" -o "$WORK/srv/large.pdf"
  BIG_BYTES=$(stat -c %s "$WORK/srv/large.pdf")
  local subjects=(personafs) s port srv_pid=
  local -A limit=([personafs]=$url [base]=$url)
  [ -n "$BASE_BIN" ] && subjects+=(base)
  if command -v rclone > /dev/null; then
    port=$($UTIL free-port)
    SRV_URL=http://127.0.0.1:$port/
    rclone serve http "$WORK/srv" --addr "127.0.0.1:$port" > "$WORK/serve.log" 2>&1 &
    srv_pid=$!
    echo "pid $srv_pid" >> "$REGISTRY"
    for _ in $(seq 100); do curl -sf -o /dev/null "$SRV_URL" && break; sleep 0.1; done
    subjects+=(rclone); limit[rclone]=${SRV_URL}large.pdf
    command -v httpdirfs > /dev/null && { subjects+=(httpdirfs); limit[httpdirfs]=${SRV_URL}large.pdf; }
  fi
  local -A C_FS=() C_CURL=() C_FSCPU=() C_CURLCPU=() C_BAD=()
  for PAIR in $(seq "$PAIRS"); do
    for s in "${subjects[@]}"; do cold_pair "$s" "${limit[$s]}"; done
  done
  [ -n "$srv_pid" ] && stop_pid "$srv_pid"
  local -A t_fs=() t_curl=() ratio=()
  for s in "${subjects[@]}"; do
    t_fs[$s]=$(median ${C_FS[$s]}); t_curl[$s]=$(median ${C_CURL[$s]})
    ratio[$s]=$(calc "${t_fs[$s]} / ${t_curl[$s]}")
  done
  local mbytes; mbytes=$(calc "$BIG_BYTES / 1e6")
  local how="$(r2 "$mbytes") MB, median of $PAIRS pairs taking turns, each after sync"
  local notes ok
  # "BYTES DIFFER" for a subject whose copy was not the file.
  bad_note() { [ -z "${C_BAD[$1]:-}" ] || bytes_differ "200 MB cold through $1"; }
  for s in rclone httpdirfs; do
    local what="rclone mount :http: --vfs-cache-mode full"
    [ "$s" = httpdirfs ] && what="httpdirfs --cache"
    if [ -n "${ratio[$s]:-}" ]; then
      notes="$how; fresh mount and cache each run; $(r0 "$mbytes / ${t_fs[$s]}") MB/s vs curl $(r0 "$mbytes / ${t_curl[$s]}") MB/s; daemon CPU $(r2 "$(cpu_per_gb "$(median ${C_FSCPU[$s]})")") s/GB, curl $(r2 "$(cpu_per_gb "$(median ${C_CURLCPU[$s]})")") s/GB"
      record "200 MB file, cold read (cp), $s vs curl (both from rclone serve http)" \
        "${t_fs[$s]}" "${t_curl[$s]}" "– (peer: $what)" "$(okif "${C_BAD[$s]:-0} == 0")" \
        "$(bad_note "$s")$notes" --subject "$s"
    else
      record "200 MB file, cold read (cp), $s vs curl (both from rclone serve http)" - - \
        "– (peer)" false "ERROR: $s could not be installed" --subject "$s"
    fi
  done
  if [ -n "${ratio[base]:-}" ]; then
    notes="$(bad_note base)$how; $BASE_BIN, fresh mount and cache each run; $(r0 "$mbytes / ${t_fs[base]}") MB/s vs curl $(r0 "$mbytes / ${t_curl[base]}") MB/s; daemon CPU $(r2 "$(cpu_per_gb "$(median ${C_FSCPU[base]})")") s/GB"
    record "(info) 200 MB file, cold read (cp), the base build vs curl" "${t_fs[base]}" "${t_curl[base]}" \
      "–" "$(okif "${C_BAD[base]:-0} == 0")" "$notes" --subject base
  fi
  notes="$how; personafs: fresh mount and cache each run, $PF_GETS download requests and $PF_FETCHED MiB fetched in the last; $(r0 "$mbytes / ${t_fs[personafs]}") MB/s vs curl $(r0 "$mbytes / ${t_curl[personafs]}") MB/s"
  ok=$(okif "${ratio[rclone]:-0} > 0 && ${ratio[personafs]} < ${ratio[rclone]:-0} && ${ratio[httpdirfs]:-0} > 0 && ${ratio[personafs]} < ${ratio[httpdirfs]:-0} && ${C_BAD[personafs]:-0} == 0")
  notes="$(bad_note personafs)$notes"
  record "200 MB file, cold read (cp) vs curl" "${t_fs[personafs]}" "${t_curl[personafs]}" \
    "ratio < rclone's (${ratio[rclone]:-not measured}) and httpdirfs's (${ratio[httpdirfs]:-not measured})" "$ok" "$notes" \
    --stretch "$(tgt "ratio ≤ 1.2" "${ratio[personafs]} <= 1.2")"
  local fs_cpu curl_cpu
  fs_cpu=$(cpu_per_gb "$(median ${C_FSCPU[personafs]})"); curl_cpu=$(cpu_per_gb "$(median ${C_CURLCPU[personafs]})")
  record "CPU seconds per GB downloaded, 200 MB cold: personafs daemon vs curl" "$fs_cpu" "$curl_cpu" \
    "reported" true "medians of the same $PAIRS pairs; personafs: utime + stime of the daemon (/proc/PID/stat) over the cp; curl: its user + system time; GB = 10^9 bytes"

  # Warm: a fresh mount whose cache is filled by one read, then cat vs the local copy, in
  # turns (single runs on this shared machine varied 0.04–0.14 s for the same local cat).
  local mp=$WORK/mnt-large file t_fs t_disk w_fs= w_disk=
  mount_fs "$mp"
  file=$mp/inquiries/$BIG/document/$BIG_NAME
  cat "$file" > /dev/null
  cat "$WORK/srv/large.pdf" > /dev/null
  read_stats s0
  for PAIR in $(seq "$PAIRS"); do
    if (( PAIR % 2 )); then
      timed cat "$file" > /dev/null; w_fs+=" $T"; timed cat "$WORK/srv/large.pdf" > /dev/null; w_disk+=" $T"
    else
      timed cat "$WORK/srv/large.pdf" > /dev/null; w_disk+=" $T"; timed cat "$file" > /dev/null; w_fs+=" $T"
    fi
  done
  read_stats s1
  t_fs=$(median $w_fs); t_disk=$(median $w_disk)
  notes="$(delta s0 s1 3) downloads; $(r0 "$mbytes / $t_fs") MB/s vs disk $(r0 "$mbytes / $t_disk") MB/s (page cache; median of $PAIRS pairs taking turns)"
  ok=$(okif "$t_fs <= $t_disk / 0.9")
  [ "$(sha256sum < "$file")" = "$(sha256sum < "$WORK/srv/large.pdf")" ] \
    || { notes="$(bytes_differ 200 MB warm)$notes"; ok=false; }
  record "200 MB file, warm read (cat) vs local disk" "$t_fs" "$t_disk" "ratio ≤ 1.11 (≥ 0.9× disk)" "$ok" "$notes"
  unmount_fs "$mp"
  rm -rf "$mp.cache"

  # mount_small DIR: a fresh mount at $WORK/DIR (mp) with the 50 MB file's metadata looked up
  # (file), its content not fetched.
  mount_small() {
    mp=$WORK/$1
    mount_fs "$mp"
    file=$mp/inquiries/$small/document/$name
    stat "$file" > /dev/null
  }
  # TTFB: a fresh mount; the file's metadata is looked up first (stat, no listing), so only
  # the content is uncached. The peer is one ranged GET of the same file: curl's TTFB.
  local name
  info=$($UTIL large-file "$MOCK_API" "$small")
  name=$(sed -n 1p <<< "$info"); url=$(sed -n 2p <<< "$info")
  mount_small mnt-ttfb
  read_stats s0
  timed head -c 1 "$file" > "$WORK/first.fs"
  local t_head=$T
  read_stats s1
  local t_req
  t_req=$(curl_url "$url" -r 0-0 -o "$WORK/first.curl" -w '%{time_starttransfer}')
  notes="one files-host request (curl, bytes 0-0) = $(r0 "$t_req * 1000") ms; personafs: head -c 1 = $(r0 "$t_head * 1000") ms (process start included), $(delta s0 s1 3) download requests, $(mb "$(delta s0 s1 4)") MiB sent by the next stats read; configured files latency $FILES_LATENCY_MS ms"
  ok=$(okif "$t_head <= 2 * $t_req")
  cmp -s "$WORK/first.fs" "$WORK/first.curl" || { notes="$(bytes_differ first byte)$notes"; ok=false; }
  record "time to first byte, uncached 50 MB file (head -c 1)" "$t_head" "$t_req" "ratio ≤ 2.0" "$ok" "$notes"
  unmount_fs "$mp"
  rm -rf "$mp.cache"

  # The end first (a video player's moov box, a PDF trailer): the last 64 KiB of the same
  # file on a fresh mount, vs curl of just that range.
  mount_small mnt-tail
  read_stats s0
  timed tail -c 65536 "$file" > "$WORK/tail.fs"
  local t_tail=$T
  read_stats s1
  local size; size=$(stat -c %s "$file")
  local t0; t0=$(now)
  curl_url "$url" -r "$((size - 65536))-$((size - 1))" -o "$WORK/tail.curl"
  t_req=$(since "$t0")
  notes="personafs: $(delta s0 s1 3) download requests ($(mb "$(delta s0 s1 4)") MiB sent by the next stats read: the download goes on); peer: curl of bytes $((size - 65536))-$((size - 1))"
  ok=true
  cmp -s "$WORK/tail.fs" "$WORK/tail.curl" || { notes="$(bytes_differ tail)$notes"; ok=false; }
  record "(info) last 64 KiB of an uncached 50 MB file (tail -c) vs curl of that range" "$t_tail" "$t_req" "–" "$ok" "$notes"
  unmount_fs "$mp"
  rm -rf "$WORK/large.curl" "$mp.cache"

  # 12. A realistic link: the files host paces each download at LINK_BANDWIDTH, after
  # LINK_LATENCY_MS; the same 200 MB, personafs against curl, in turns.
  $UTIL config "$MOCK_BASE" "{\"files_bandwidth\": $LINK_BANDWIDTH, \"files_latency_ms\": $LINK_LATENCY_MS}"
  C_FS=(); C_CURL=(); C_FSCPU=(); C_CURLCPU=(); C_BAD=()
  for PAIR in $(seq "$PAIRS"); do
    cold_pair personafs "$big_url"
    [ -z "$BASE_BIN" ] || cold_pair base "$big_url"
  done
  stop_pid "$MOCK_PID"
  t_fs=$(median ${C_FS[personafs]}); local t_curl; t_curl=$(median ${C_CURL[personafs]})
  local link="$(r0 "$LINK_BANDWIDTH / 1e6") MB/s per download, $LINK_LATENCY_MS ms"
  notes="$(bad_note personafs)$how; files host paced at $link; $(r0 "$mbytes / $t_fs") MB/s vs curl $(r0 "$mbytes / $t_curl") MB/s"
  ok=$(okif "$t_fs <= 1.05 * $t_curl && ${C_BAD[personafs]:-0} == 0")
  record "realistic link ($link): 200 MB file, cold read (cp) vs curl" "$t_fs" "$t_curl" \
    "ratio ≤ 1.05" "$ok" "$notes"
  fs_cpu=$(cpu_per_gb "$(median ${C_FSCPU[personafs]})"); curl_cpu=$(cpu_per_gb "$(median ${C_CURLCPU[personafs]})")
  record "CPU seconds per GB downloaded, 200 MB cold over the realistic link: personafs daemon vs curl" \
    "$fs_cpu" "$curl_cpu" "reported" true "medians of the same $PAIRS pairs, measured as above"
  if [ -n "$BASE_BIN" ]; then
    t_fs=$(median ${C_FS[base]}); t_curl=$(median ${C_CURL[base]})
    record "(info) realistic link ($link): 200 MB file, cold read (cp), the base build vs curl" \
      "$t_fs" "$t_curl" "–" "$(okif "${C_BAD[base]:-0} == 0")" "$(bad_note base)$BASE_BIN; $how"
  fi
  rm -rf "$WORK/srv"
}

# ---------------------------------------------------------------------------------------------
# 13. A realistic link for many files: cold cp -r of N_LINK_TREE inquiries against the 8-worker
# peer, the files host pacing each download at LINK_TREE_BANDWIDTH. Each run gets a fresh mock
# (a whole rate-limit budget); the sides take turns; medians of PAIRS runs.
wl_link_tree() {
  local mp=$WORK/mnt-link t_fs= t_peer= i files=0 bad=
  local args=(--generate "$N_LINK_TREE" --files-bandwidth "$LINK_TREE_BANDWIDTH")
  link_fs() {
    rm -rf "$WORK/link.fs" "$mp.cache"
    FILES_LATENCY_MS=$LINK_LATENCY_MS start_mock linkfs "${args[@]}"
    mount_fs "$mp"
    timed cp -r "$mp/inquiries" "$WORK/link.fs"
    t_fs+=" $T_COLD"
    unmount_fs "$mp"; stop_pid "$MOCK_PID"
  }
  link_peer() {
    rm -rf "$WORK/link.peer"
    FILES_LATENCY_MS=$LINK_LATENCY_MS start_mock linkpeer "${args[@]}"
    timed $PEER --api-base "$MOCK_API" --workers 8 --out "$WORK/link.peer" > "$WORK/link.peer.txt"
    t_peer+=" $T"
    stop_pid "$MOCK_PID"
  }
  for i in $(seq "$PAIRS"); do
    if (( i % 2 )); then link_fs; link_peer; else link_peer; link_fs; fi
    same_bytes "$WORK/link.fs" "$WORK/link.peer" || bad=1
  done
  files=$(count_files "$WORK/link.fs")
  local m_fs m_peer; m_fs=$(median $t_fs); m_peer=$(median $t_peer)
  local notes="$N_LINK_TREE inquiries, $files files; files host paced at $(r0 "$LINK_TREE_BANDWIDTH / 1e6") MB/s per download, $LINK_LATENCY_MS ms; personafs from mount launch; median of $PAIRS pairs taking turns, a fresh mock each run; peer: $(peer_counts "$WORK/link.peer.txt")"
  local ok; ok=$(okif "$m_fs <= $m_peer")
  [ -z "$bad" ] || { notes="$(bytes_differ link cp vs peer8)$notes"; ok=false; }
  record "realistic link ($(r0 "$LINK_TREE_BANDWIDTH / 1e6") MB/s per download): cold cp -r, $N_LINK_TREE inquiries, vs 8-worker peer" \
    "$m_fs" "$m_peer" "ratio ≤ 1.0" "$ok" "$notes"
  rm -rf "$WORK/link.fs" "$WORK/link.peer" "$mp.cache"
}

# ---------------------------------------------------------------------------------------------
# 7./8. ls -l of 5,000 inquiries, cold then warm; 9. ls -lR of N_TREE inquiries.
wl_ls() {
  local mp=$WORK/mnt-ls s0 s1 s2
  start_mock ls --generate "$N_LS"
  read_stats s0
  mount_fs "$mp"
  local ready=$FS_READY
  timed ls -l "$mp/inquiries" > "$WORK/ls1"
  local t_cold=$T_COLD
  read_stats s1
  timed ls -l "$mp/inquiries" > "$WORK/ls2"
  local t_warm=$T   # the first warm run: the target is about the very next ls
  read_stats s2
  unmount_fs "$mp"
  # The peer: the same listing by the API (pages of 100), on the same mock.
  timed $PEER --api-base "$MOCK_API" --list-only > "$WORK/peerls.txt"
  local t_peer=$T
  stop_pid "$MOCK_PID"
  local want=$(( (N_LS + 99) / 100 ))
  local api1; api1=$(delta s0 s1 0)
  local entries; entries=$(($(wc -l < "$WORK/ls1") - 1))
  local notes="from mount launch (ready after $(r2 "$ready") s): $api1 API calls ($(delta s0 s1 1) list, $(delta s0 s1 2) retrieve), want $want; $entries entries; peer = the same pages listed by peer.py"
  local ok; ok=$(okif "$api1 == $want && $t_cold <= 1.25 * $t_peer && $entries == $N_LS")
  record "ls -l of $N_LS inquiries, cold" "$t_cold" "$t_peer" "$want API calls, ratio ≤ 1.25" "$ok" "$notes"

  mkdir -p "$WORK/lsdisk"
  (cd "$WORK/lsdisk" && seq -f 'inq_%06g' "$N_LS" | xargs mkdir -p)
  ls -l "$WORK/lsdisk" > /dev/null
  best3 ls -l "$WORK/lsdisk" > /dev/null
  local t_disk=$T
  local api2; api2=$(delta s1 s2 0)
  notes="$api2 API calls; peer = ls -l of $N_LS local directories (best of 3)"
  ok=$(okif "$api2 == 0 && $t_warm < 0.2")
  cmp -s "$WORK/ls1" "$WORK/ls2" || notes="listing changed between runs; $notes"
  record "ls -l of $N_LS inquiries, warm" "$t_warm" "$t_disk" "0 API calls, < 0.2 s" "$ok" "$notes"
  rm -rf "$WORK/lsdisk" "$mp.cache"

  mp=$WORK/mnt-lsr
  start_mock lsr --generate "$N_TREE"
  read_stats s0
  mount_fs "$mp"
  timed ls -lR "$mp/inquiries" > "$WORK/lsr"
  local t_lsr=$T_COLD
  read_stats s1
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  start_mock lsrpeer --generate "$N_TREE"
  timed $PEER --api-base "$MOCK_API" --workers 8 --no-download > "$WORK/peerlsr.txt"
  local t_peer=$T
  stop_pid "$MOCK_PID"
  local api; api=$(delta s0 s1 0)
  notes="from mount launch: $api API calls ($(delta s0 s1 1) list, $(delta s0 s1 2) retrieve), $(delta s0 s1 5) rate-limited, $(delta s0 s1 3) downloads; peer = list + retrieve each, 8 workers"
  ok=$(okif "$api <= 2 + $N_TREE")
  record "ls -lR of $N_TREE inquiries" "$t_lsr" "$t_peer" "API calls ≤ $((2 + N_TREE))" "$ok" "$notes"
  rm -rf "$mp.cache"
}

# ---------------------------------------------------------------------------------------------
# 10. peak RSS of the daemon while copying BIG_FILES × BIG_SIZE; 11. RSS per listed inquiry.
wl_memory() {
  local args=() i
  for i in $(seq "$BIG_FILES"); do args+=(--large-file "$BIG_SIZE"); done
  start_mock big "${args[@]}"
  local mp=$WORK/mnt-big s0 s1
  mount_fs "$mp"
  local before; before=$(vm "$FS_PID" VmRSS)
  read_stats s0
  timed cp -r "$mp/inquiries" "$WORK/big"
  local t_cp=$T
  read_stats s1
  local hwm; hwm=$(vm "$FS_PID" VmHWM)
  unmount_fs "$mp"
  rm -rf "$mp.cache"
  timed $PEER --api-base "$MOCK_API" --workers 8 --out "$WORK/bigpeer" > /dev/null
  local t_peer=$T
  stop_pid "$MOCK_PID"
  local copied; copied=$(mb "$(delta s0 s1 4)")
  local notes="peak RSS (VmHWM) $(mb "$hwm") MiB (at ready: $(mb "$before") MiB); copied $copied MiB in $BIG_FILES file(s)"
  [ "$QUICK" = 1 ] && notes="$notes (quick mode: not 1 GB)"
  local ok; ok=$(okif "$hwm < 100 * 1048576")
  same_bytes "$WORK/big" "$WORK/bigpeer" || { notes="$(bytes_differ big copy)$notes"; ok=false; }
  record "peak RSS copying $BIG_FILES × $BIG_SIZE (cp -r vs 8-worker peer)" "$t_cp" "$t_peer" "RSS < 100 MiB" "$ok" "$notes"
  rm -rf "$WORK/big" "$WORK/bigpeer"

  # Memory of a listing: RSS after `ls -l` of N_MEMORY inquiries minus the same with one
  # inquiry (personafs lists everything before it reports ready, so there is no "before").
  # Latency and rate limits are off: they do not change memory.
  local rss=() n t_ls t_peer entries api
  for n in 1 "$N_MEMORY"; do
    API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock "mem$n" --generate "$n"
    mp=$WORK/mnt-mem$n
    read_stats s0
    mount_fs "$mp" --api-rate-limit 1000000
    timed ls -l "$mp/inquiries" > "$WORK/lsmem"
    t_ls=$T_COLD
    read_stats s1
    rss+=("$(vm "$FS_PID" VmRSS)")
    hwm=$(vm "$FS_PID" VmHWM)
    unmount_fs "$mp"
    timed $PEER --api-base "$MOCK_API" --list-only > /dev/null
    t_peer=$T
    stop_pid "$MOCK_PID"
    entries=$(($(wc -l < "$WORK/lsmem") - 1))
    api=$(delta s0 s1 0)
    rm -rf "$mp.cache"
  done
  notes="RSS $(mb "${rss[0]}") MiB with 1 inquiry, $(mb "${rss[1]}") MiB with $N_MEMORY (peak $(mb "$hwm")): $(r0 "(${rss[1]} - ${rss[0]}) / ($N_MEMORY - 1)") bytes per inquiry; $entries listed with $api API calls, from mount launch (no latency, no rate limit)"
  [ "$QUICK" = 1 ] && notes="$notes (quick mode: $N_MEMORY, not 50,000)"
  ok=$(okif "$entries == $N_MEMORY")
  record "RSS with $N_MEMORY inquiries listed (ls -l vs peer listing)" "$t_ls" "$t_peer" "report bytes per inquiry" "$ok" "$notes"
}

# ---------------------------------------------------------------------------------------------
# 12.–16. A large organization (issue #12). Latency and rate limits are off: these rows count
# requests and measure memory; the time is reported, not targeted (but offline's).
wl_scale() {
  local mp=$WORK/mnt-scale s0 s1 s2 s3 s4 s5 rss=() i t_walk=() lists
  local pages=$(( (N_SCALE + 99) / 100 ))
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock scale --generate "$N_SCALE"
  read_stats s0
  READY_TRIES=3000 mount_fs "$mp" --api-rate-limit 1000000
  for i in 1 2 3; do
    timed ls -lR "$mp/inquiries" > "$WORK/scale$i" 2> "$WORK/scale$i.err"
    t_walk+=("$([ "$i" = 1 ] && echo "$T_COLD" || echo "$T")")
    rss+=("$(vm "$FS_PID" VmRSS)")
    [ "$i" = 1 ] && read_stats s1
  done
  read_stats s2
  local hwm; hwm=$(vm "$FS_PID" VmHWM)
  unmount_fs "$mp"
  local files; files=$(grep -c '^-' "$WORK/scale1" || true)
  local errors; errors=$(cat "$WORK"/scale?.err | wc -l)
  lists=$(delta s0 s1 1)
  local notes="$N_SCALE inquiries, $files entries that are files; $lists list calls (want ≤ $((2 * pages))), $(delta s0 s1 2) retrieves, $(delta s0 s1 3) downloads; from mount launch; $errors error lines"
  local ok; ok=$(okif "$lists <= 2 * $pages && $errors == 0")
  record "cold ls -lR of $N_SCALE inquiries: list calls" "${t_walk[0]}" - "list calls ≤ 2 × ceil(N/100)" "$ok" "$notes"
  notes="RSS after walks 1, 2, 3: $(mb "${rss[0]}"), $(mb "${rss[1]}"), $(mb "${rss[2]}") MiB (peak $(mb "$hwm")); walks took ${t_walk[0]}, ${t_walk[1]}, ${t_walk[2]} s; walks 2 and 3: $(delta s1 s2 0) API calls"
  cmp -s "$WORK/scale1" "$WORK/scale3" || notes="the tree changed between walks; $notes"
  record "RSS after ls -lR of $N_SCALE inquiries, three walks" "${t_walk[2]}" - "RSS < 256 MiB" \
    "$(okif "${rss[0]} < 256 * 1048576 && ${rss[2]} < 256 * 1048576")" "$notes" \
    --target "3rd walk within 10 % of the 1st=$(okif "${rss[2]} <= 1.1 * ${rss[0]}")"

  # Remount on the same cache directory: the metadata store answers, the listing is asked again.
  read_stats s3
  READY_TRIES=3000 mount_fs "$mp" --api-rate-limit 1000000
  timed find "$mp/inquiries" -exec stat --format='%s %n' {} + > "$WORK/scale-find" 2> "$WORK/scale-find.err"
  local t_find=$T_COLD
  read_stats s4
  timed ls -lR "$mp/inquiries" > "$WORK/scale4" 2>> "$WORK/scale-find.err"
  read_stats s5
  unmount_fs "$mp"
  # The same with a metadata TTL longer than the walk: past the TTL, the default re-checks the
  # unfinished inquiries it reaches late (the TTL's rule), so this one shows the store alone.
  local s6 s7
  read_stats s6
  READY_TRIES=3000 mount_fs "$mp" --api-rate-limit 1000000 --metadata-ttl 1h
  timed find "$mp/inquiries" -exec stat --format='%s %n' {} + > /dev/null 2> "$WORK/scale-ttl.err"
  local t_ttl=$T_COLD
  ls -lR "$mp/inquiries" > /dev/null 2>> "$WORK/scale-ttl.err"
  read_stats s7
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  local ttl_errors; ttl_errors=$(wc -l < "$WORK/scale-ttl.err")
  errors=$(wc -l < "$WORK/scale-find.err")
  local api; api=$(( $(delta s3 s5 0) ))
  notes="from remount launch: find -exec stat $(delta s3 s4 0) API calls ($(delta s3 s4 1) list, $(delta s3 s4 2) retrieve), then ls -lR $(delta s4 s5 0); $(delta s3 s5 3) downloads; want ≤ $((pages + 10)) API calls and 0 downloads; $errors error lines"
  cmp -s "$WORK/scale1" "$WORK/scale4" || notes="ls -lR after the remount differs from the first; $notes"
  ok=$(okif "$api <= $pages + 10 && $(delta s3 s5 3) == 0 && $errors == 0")
  record "remount, find -exec stat + ls -lR of $N_SCALE inquiries" "$t_find" - "API calls ≤ ceil(N/100) + 10, 0 downloads" "$ok" "$notes"
  notes="from remount launch: $(delta s6 s7 0) API calls ($(delta s6 s7 1) list, $(delta s6 s7 2) retrieve), $(delta s6 s7 3) downloads; $ttl_errors error lines"
  ok=$(okif "$(delta s6 s7 0) <= $pages + 10 && $(delta s6 s7 3) == 0 && $ttl_errors == 0")
  record "(info) the same remount with --metadata-ttl 1h" "$t_ttl" - "API calls ≤ ceil(N/100) + 10, 0 downloads" "$ok" "$notes"
  rm -rf "$mp.cache" "$WORK"/scale*
}

# Freshness by deltas (issue #25) over N_SCALE inquiries, default options (the request budget
# lifted: the mock has no limit here). The first mount walks (a whole listing, a retrieve per
# inquiry); then a remount walks by deltas alone, with the default TTL and with 2 s; then 500
# changes with search 60 s behind; an idle mount; a delta of 10,000 changes.
# BENCH_DELTAS_IDLE (600 full, 120 quick) is the idle stretch in seconds.
wl_deltas() {
  local mp=$WORK/mnt-deltas s0 s1 s2 s3 s4 s5 s6 s7
  # The issue's figures; BENCH_DELTAS_TTL and BENCH_DELTAS_LAG shorten a trial run.
  local ttl=${BENCH_DELTAS_TTL:-60} lag=${BENCH_DELTAS_LAG:-60}
  local idle=${BENCH_DELTAS_IDLE:-$([ "$QUICK" = 1 ] && echo 120 || echo 600)}
  local budget=(--api-rate-limit 1000000)
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock deltas --generate "$N_SCALE"
  READY_TRIES=3000 mount_fs "$mp" "${budget[@]}"
  ls -lR "$mp/inquiries" > "$WORK/deltas1" 2> "$WORK/deltas1.err"
  $UTIL change-plan "$mp" 500 10 "$WORK/deltas-plan.json"
  unmount_fs "$mp"

  # Remount, nothing changed: find -exec stat, then ls -lR.
  local row ttl_flag walk_s api lists searches retrieves errors want ok
  for row in default 2s; do
    ttl_flag=(); [ "$row" = 2s ] && ttl_flag=(--metadata-ttl 2s)
    read_stats s0
    READY_TRIES=3000 mount_fs "$mp" "${budget[@]}" "${ttl_flag[@]}"
    find "$mp/inquiries" -exec stat --format='%s %n' {} + > /dev/null 2> "$WORK/deltas-walk.err"
    ls -lR "$mp/inquiries" > "$WORK/deltas2" 2>> "$WORK/deltas-walk.err"
    walk_s=$(since "$FS_START")
    read_stats s1
    unmount_fs "$mp"
    api=$(delta s0 s1 0); lists=$(delta s0 s1 1); retrieves=$(delta s0 s1 2); searches=$(delta s0 s1 6)
    errors=$(wc -l < "$WORK/deltas-walk.err")
    if [ "$row" = default ]; then
      want=$(awk -v w="$walk_s" -v t="$ttl" 'BEGIN { printf "%d", 2 * int((w + t - 1) / t) + 10 }')
      ok=$(okif "$retrieves == 0 && $api <= $want && $errors == 0")
      cmp -s "$WORK/deltas1" "$WORK/deltas2" || ok=false
      record "remount by deltas, find -exec stat + ls -lR of $N_SCALE inquiries" "$walk_s" - \
        "0 retrieves, API calls ≤ 2 × ceil(walk s / TTL) + 10" "$ok" \
        "from remount launch: $api API calls ($lists list pages, $searches search pages, $retrieves retrieves; want ≤ $want); $errors error lines"
    else
      ok=$(okif "$retrieves == 0 && $errors == 0")
      record "the same remount with --metadata-ttl 2s (a delta every 2 s)" "$walk_s" - \
        "0 retrieves" "$ok" \
        "$api API calls ($lists list pages, $searches search pages, $retrieves retrieves); $errors error lines"
    fi
  done

  # 500 changes (new documents on unfinished inquiries, status changes, 10 redactions) with
  # search 60 s behind: the changed inquiries are walked every 2 s until the mount shows them
  # all (the time each shows), then the whole tree once.
  READY_TRIES=3000 mount_fs "$mp" "${budget[@]}" --metadata-ttl "${ttl}s"
  ls -lR "$mp/inquiries" > /dev/null 2>&1
  local before_status after_status; before_status=$("$BIN" status "$mp" --json)
  $UTIL config "$MOCK_BASE" "{\"search_lag\": $lag}"
  read_stats s2
  local t0 t1 n_changes unseen=-1 all_s=- apply_s
  t0=$(now)
  n_changes=$($UTIL apply "$MOCK_BASE" "$WORK/deltas-plan.json")
  # Making the changes takes a while (one request each): each is due TTL + lag after it was
  # made, so the last one is timed from when it was made.
  t1=$(now); apply_s=$(since "$t0")
  while holds "$(since "$t1") < $ttl + $lag + 60"; do
    unseen=$($UTIL unseen "$mp" "$WORK/deltas-plan.json")
    if [ "$unseen" = 0 ]; then all_s=$(since "$t1"); break; fi
    sleep 2
  done
  ls -lR "$mp/inquiries" > "$WORK/deltas3" 2> "$WORK/deltas3.err" || true
  [ -s "$WORK/deltas3.err" ] && all_s=-
  read_stats s3
  after_status=$("$BIN" status "$mp" --json)
  local deltas pages
  deltas=$(python3 -c 'import json,sys; a,b=(json.loads(x)["deltas"] for x in sys.argv[1:]); print(b["deltas"]-a["deltas"], b["search_pages"]-a["search_pages"])' "$before_status" "$after_status")
  read -r deltas pages <<< "$deltas"
  retrieves=$(delta s2 s3 2)
  local in_time=0
  [ "$all_s" != - ] && holds "$all_s <= $ttl + $lag + 10" && in_time=1
  ok=$(okif "$in_time == 1 && $retrieves <= $n_changes && $pages <= 5 * ($deltas > 0 ? $deltas : 1)")
  record "500 changes with search 60 s behind: all shown, from the last change" "$all_s" - \
    "all shown ≤ TTL + lag after the last, retrieves ≤ changes, ≤ 5 search pages a delta" "$ok" \
    "$n_changes changes made in $apply_s s; $unseen not shown at the end; $retrieves retrieves; $deltas deltas, $pages search pages, $(delta s2 s3 1) list pages"

  # Idle: nobody uses the mount.
  read_stats s4
  sleep "$idle"
  read_stats s5
  api=$(delta s4 s5 0)
  record "idle mount of $N_SCALE inquiries for $idle s" "$idle" - "0 API calls" "$(okif "$api == 0")" "$api API calls"
  unmount_fs "$mp"

  # A delta of 10,000 changed inquiries, applied by the ls that needs it.
  $UTIL config "$MOCK_BASE" '{"search_lag": 0}'
  READY_TRIES=3000 mount_fs "$mp" "${budget[@]}" --metadata-ttl 2s
  ls "$mp/inquiries" > /dev/null
  local first; first=$(find "$mp/inquiries" -mindepth 1 -maxdepth 1 -printf '%f\n' -quit)
  local changed; changed=$($UTIL statuses "$MOCK_BASE" "$mp" 10000)
  sleep 2.5
  # An open always reaches personafs (a listing may come from the kernel's cache): it needs
  # a delta, which reports every change.
  read_stats s6
  timed cat "$mp/inquiries/$first/inquiry.json" > /dev/null
  read_stats s7
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  record "an open applying a delta of $changed changes" "$T" - "< 5 s" "$(okif "$T < 5")" \
    "$(delta s6 s7 6) search pages, $(delta s6 s7 1) list pages, $(delta s6 s7 2) retrieves"
  rm -rf "$mp.cache" "$WORK"/deltas*
}

# ls -l of a million inquiries: the listing's and the inode table's memory (the mock derives
# each inquiry when asked).
wl_million() {
  local mp=$WORK/mnt-million s0 s1 rss hwm errors notes ok
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock million --generate "$N_MILLION"
  local mock_rss0; mock_rss0=$(vm "$MOCK_PID" VmRSS)
  read_stats s0
  READY_TRIES=6000 mount_fs "$mp" --api-rate-limit 1000000
  timed ls -l "$mp/inquiries" > "$WORK/million" 2> "$WORK/million.err"
  local t_million=$T_COLD
  read_stats s1
  rss=$(vm "$FS_PID" VmRSS); hwm=$(vm "$FS_PID" VmHWM)
  local mock_rss; mock_rss=$(vm "$MOCK_PID" VmRSS)
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  local entries; entries=$(($(wc -l < "$WORK/million") - 1))
  errors=$(wc -l < "$WORK/million.err")
  notes="$entries entries, $(delta s0 s1 1) list calls, from mount launch; RSS $(mb "$rss") MiB (peak $(mb "$hwm")); the mock: $(mb "$mock_rss0") MiB at start, $(mb "$mock_rss") MiB after (want < 300); $errors error lines"
  ok=$(okif "$rss < 256 * 1048576 && $entries == $N_MILLION && $errors == 0")
  record "RSS after ls -l of $N_MILLION inquiries" "$t_million" - "RSS < 256 MiB" "$ok" "$notes" \
    --target "mock < 300 MiB=$(okif "$mock_rss < 300 * 1048576")"
  rm -rf "$mp.cache" "$WORK"/million*
}

# The views beside inquiries/ (issue #26). by-reference-id/ comes from the listing: no API
# call once inquiries/ is listed. A reference id the listing lacks costs one filtered list
# call, and none again within the negative TTL. rsync -aL of one day's links equals the same
# inquiries copied from inquiries/, and a second run copies nothing.
wl_views() {
  local mp=$WORK/mnt-views s0 s1 s2 s3 notes ok errors keys
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock views --generate "$N_VIEWS"
  READY_TRIES=3000 mount_fs "$mp" --api-rate-limit 1000000 --metadata-ttl 1h
  ls "$mp/inquiries" > /dev/null
  read_stats s0
  timed ls "$mp/by-reference-id" > "$WORK/views-refs" 2> "$WORK/views.err"
  local t_refs=$T
  read_stats s1
  keys=$(wc -l < "$WORK/views-refs")
  errors=$(wc -l < "$WORK/views.err")
  notes="$keys reference ids of $N_VIEWS inquiries, $(delta s0 s1 0) API calls once inquiries/ was listed; RSS $(mb "$(vm "$FS_PID" VmRSS)") MiB; $errors error lines"
  ok=$(okif "$(delta s0 s1 0) == 0 && $keys > 0 && $errors == 0")
  record "ls by-reference-id, $N_VIEWS inquiries listed" "$t_refs" - "0 API calls" "$ok" "$notes"

  local nobody="not-seen-$$-$RANDOM"
  timed stat "$mp/by-reference-id/$nobody" > /dev/null 2>&1 || true
  local t_first=$T
  read_stats s2
  stat "$mp/by-reference-id/$nobody" > /dev/null 2>&1 || true
  read_stats s3
  notes="stat of a reference id the listing lacks: $(delta s1 s2 0) API calls ($(delta s1 s2 1) list), again within the negative TTL: $(delta s2 s3 0)"
  ok=$(okif "$(delta s1 s2 0) == 1 && $(delta s1 s2 1) == 1 && $(delta s2 s3 0) == 0")
  record "lookup of a reference id not seen, then again" "$t_first" - "1 API call, then 0" "$ok" "$notes"
  unmount_fs "$mp"; stop_pid "$MOCK_PID"; rm -rf "$mp.cache"

  # One day's inquiries through by-day/ (the day with the most of them).
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock views-day --generate "$N_VIEWS_DAY"
  mount_fs "$mp" --api-rate-limit 1000000 --metadata-ttl 1h
  local day
  day=$(for d in "$mp"/by-day/*/*/*; do echo "$(ls "$d" | wc -l) $d"; done | sort -n | tail -1 | cut -d' ' -f2-)
  local n; n=$(ls "$day" | wc -l)
  rm -rf "$WORK/views-day" "$WORK/views-direct"; mkdir -p "$WORK/views-direct"
  timed rsync -aL "$day/" "$WORK/views-day/" 2> "$WORK/views-rsync.err"
  local t1=$T
  for id in $(ls "$day"); do rsync -a "$mp/inquiries/$id" "$WORK/views-direct/" 2>> "$WORK/views-rsync.err"; done
  local same=false
  diff -r "$WORK/views-day" "$WORK/views-direct" > /dev/null 2>&1 && same=true
  timed rsync -aL --stats "$day/" "$WORK/views-day/" > "$WORK/views-rsync2" 2>> "$WORK/views-rsync.err"
  local t2=$T
  local again; again=$(sed -n 's/^Number of regular files transferred: *\([0-9,]*\).*/\1/p' "$WORK/views-rsync2" | tr -d ,)
  errors=$(wc -l < "$WORK/views-rsync.err")
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  notes="${day#"$mp/"}: $n inquiries, $(du -sb "$WORK/views-day" | cut -f1) bytes in $t1 s; identical to rsync -a of the same from inquiries/: $same; the second run ${t2} s, ${again:-?} files transferred; $errors error lines"
  ok=$(okif "${again:-1} == 0 && $errors == 0 && $n > 0")
  [ "$same" = true ] || ok=false
  record "rsync -aL of one day of by-day/ ($N_VIEWS_DAY inquiries)" "$t1" - "byte-identical, 2nd run copies nothing" "$ok" "$notes"
  rm -rf "$mp.cache" "$WORK"/views*
}

# RSS with by-reference-id/ listed at a million inquiries (its own mount: wl_million's ls -l
# holds a million inodes that no view needs).
wl_views_million() {
  local mp=$WORK/mnt-views-million s0 s1 rss hwm errors notes ok keys
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock views-million --generate "$N_MILLION"
  read_stats s0
  READY_TRIES=6000 mount_fs "$mp" --api-rate-limit 1000000 --metadata-ttl 1h
  timed ls "$mp/by-reference-id" > "$WORK/views-million" 2> "$WORK/views-million.err"
  local t_refs=$T
  read_stats s1
  rss=$(vm "$FS_PID" VmRSS); hwm=$(vm "$FS_PID" VmHWM)
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  keys=$(wc -l < "$WORK/views-million")
  errors=$(wc -l < "$WORK/views-million.err")
  notes="$keys reference ids of $N_MILLION inquiries in $t_refs s; $(delta s0 s1 1) list calls from mount launch; RSS $(mb "$rss") MiB (peak $(mb "$hwm")); $errors error lines"
  ok=$(okif "$rss < 256 * 1048576 && $keys > 0 && $errors == 0")
  record "RSS after ls by-reference-id of $N_MILLION inquiries" "$t_refs" - "RSS < 256 MiB" "$ok" "$notes"
  rm -rf "$mp.cache" "$WORK"/views-million*
}

# Offline: everything of N_OFFLINE inquiries was seen (ls -lR) and cached (cat), Persona then
# stops; a remount on the same cache directory walks it from the store and the cache.
wl_offline() {
  local mp=$WORK/mnt-offline errors notes ok
  API_LATENCY_MS=0 FILES_LATENCY_MS=0 RATE_LIMIT=0 start_mock offline --generate "$N_OFFLINE"
  mount_fs "$mp" --api-rate-limit 1000000
  ls -lR "$mp/inquiries" > "$WORK/offline1"
  find "$mp/inquiries" -type f -exec cat {} + > /dev/null
  sleep 1   # the last views reach the store
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  mount_fs "$mp"
  local ready=$FS_READY
  timed ls -lR "$mp/inquiries" > "$WORK/offline2" 2> "$WORK/offline2.err"
  local t_off=$T
  timed find "$mp/inquiries" -type f -exec cat {} + > /dev/null 2>> "$WORK/offline2.err"
  local t_cat=$T
  unmount_fs "$mp"
  errors=$(wc -l < "$WORK/offline2.err")
  notes="remount with Persona down ready after $(r2 "$ready") s; ls -lR $t_off s, then cat of every file $t_cat s; $errors error lines"
  cmp -s "$WORK/offline1" "$WORK/offline2" || notes="the offline tree differs from the online one; $notes"
  ok=$(okif "$t_off < 2 && $errors == 0")
  cmp -s "$WORK/offline1" "$WORK/offline2" || ok=false
  record "offline ls -lR of $N_OFFLINE cached inquiries" "$t_off" - "< 2 s, no error" "$ok" "$notes"
  rm -rf "$mp.cache" "$WORK"/offline*
}

# ---------------------------------------------------------------------------------------------
# 12./13. redaction latency: a redaction made at the mock until the inquiry's cached files are
# gone and its document/ is empty, with --watch-events 1s (target ≤ 2 × the interval) and with
# a signed webhook (≤ 1 s); 14. a webhook signed with a wrong secret: 401, nothing changes.
# The metadata TTL is an hour: only the change can explain what changes.

# changes_pick MP: an inquiry of the mount that shows documents.
changes_pick() {
  local d
  for d in "$1"/inquiries/*/; do
    [ -n "$(ls -A "$d/document" 2>/dev/null)" ] && { basename "$d"; return 0; }
  done
  return 1
}
# cached_of CACHE ID: the cache entries of inquiry ID.
cached_of() { grep -l "\"$2\"" "$1"/data/*.meta 2>/dev/null | wc -l; }
# redaction_seconds MP ID: redact ID at the mock, then the seconds until its cached files are
# gone and its document/ is empty (30 s at most: then "-").
redaction_seconds() {
  local mp=$1 id=$2 t0
  t0=$(now)
  curl -sf -X POST "$MOCK_BASE/_mock/inquiries/$id/redact" > /dev/null
  for _ in $(seq 3000); do
    if [ "$(cached_of "$mp.cache" "$id")" = 0 ] && [ -z "$(ls -A "$mp/inquiries/$id/document" 2>/dev/null)" ]; then
      since "$t0"; return 0
    fi
    sleep 0.01
  done
  echo -
}
wl_changes() {
  local mp=$WORK/mnt-feed id t t0 n ok notes
  local interval=1
  start_mock feed --generate 20
  mount_fs "$mp" --metadata-ttl 1h --prefetch=false --cache-min-free 0 --watch-events "${interval}s"
  for _ in $(seq 300); do grep -q "events feed started" "$mp.log" && break; sleep 0.1; done
  id=$(changes_pick "$mp")
  cp -r "$mp/inquiries/$id" "$WORK/feed-copy"
  for _ in $(seq 300); do [ "$(cached_of "$mp.cache" "$id")" -gt 0 ] && break; sleep 0.1; done
  n=$(cached_of "$mp.cache" "$id")
  t=$(redaction_seconds "$mp" "$id")
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  ok=false; [ "$t" != - ] && ok=$(okif "$t <= 2 * $interval")
  notes="--watch-events ${interval}s, metadata TTL 1 h: $n cached files and document/ gone; limit = 2 × the interval"
  record "redaction applied by the events feed (changes_feed_redaction_s)" "$t" "$(calc "2 * $interval")" "≤ 2 × interval" "$ok" "$notes"
  rm -rf "$mp.cache" "$WORK/feed-copy"

  mp=$WORK/mnt-hook
  local secrets=$WORK/webhook-secrets port status victim
  (umask 077; printf 'whsec_bench_%s\n' "$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')" > "$secrets")
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  start_mock hook --generate 20 --webhook-url "http://127.0.0.1:$port/" --webhook-secret-file "$secrets"
  mount_fs "$mp" --metadata-ttl 1h --prefetch=false --cache-min-free 0 \
    --webhook-listen "127.0.0.1:$port" --webhook-secret-file "$secrets"
  # The wrong signature first, on one inquiry; then the real redaction of another.
  victim=$(changes_pick "$mp")
  cp -r "$mp/inquiries/$victim" "$WORK/hook-before"
  local body="{\"data\":{\"type\":\"event\",\"id\":\"evt_bench\",\"attributes\":{\"name\":\"inquiry.redacted\",\"payload\":{\"data\":{\"type\":\"inquiry\",\"id\":\"$victim\"}}}}}"
  local sig; sig=$(python3 -c 'import hmac, hashlib, sys, time
t = int(time.time()); print(f"t={t},v1=" + hmac.new(b"whsec_wrong", f"{t}.".encode() + sys.argv[1].encode(), hashlib.sha256).hexdigest())' "$body")
  t0=$(now)
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/" \
    -H 'Content-Type: application/json' -H "Persona-Signature: $sig" --data-binary "$body")
  t=$(since "$t0")
  sleep 1
  cp -r "$mp/inquiries/$victim" "$WORK/hook-after"
  ok=$(okif "$status == 401")
  notes="answer $status; $(cached_of "$mp.cache" "$victim") cached files of the inquiry left"
  if ! diff -r "$WORK/hook-before" "$WORK/hook-after" > /dev/null; then ok=false; notes="FILES CHANGED; $notes"; fi
  record "webhook with a wrong signature: 401, nothing changes" "$t" - "401 and files unchanged" "$ok" "$notes"
  rm -rf "$WORK/hook-before" "$WORK/hook-after"

  id=$(ls "$mp/inquiries" | while read -r i; do [ "$i" != "$victim" ] && [ -n "$(ls -A "$mp/inquiries/$i/document" 2>/dev/null)" ] && { echo "$i"; break; }; done)
  cp -r "$mp/inquiries/$id" "$WORK/hook-copy"
  for _ in $(seq 300); do [ "$(cached_of "$mp.cache" "$id")" -gt 0 ] && break; sleep 0.1; done
  n=$(cached_of "$mp.cache" "$id")
  t=$(redaction_seconds "$mp" "$id")
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  ok=false; [ "$t" != - ] && ok=$(okif "$t <= 1")
  notes="signed webhook from the mock, metadata TTL 1 h: $n cached files and document/ gone"
  record "redaction applied by a webhook (changes_webhook_redaction_s)" "$t" 1 "≤ 1 s" "$ok" "$notes"
  rm -rf "$mp.cache" "$WORK/hook-copy" "$secrets"
}

# ---------------------------------------------------------------------------------------------
# 12. SHARED_MOUNTS mounts (separate processes and cache dirs) with --shared-state walking the
# same N_SHARED inquiries at once (ls -lR) against the mock limited to RATE_LIMIT, vs one
# mount alone on a fresh mock of the same seed: 429s, total API calls, wall time.
wl_shared() {
  command -v redis-server > /dev/null || { echo "wl_shared needs redis-server" >&2; return 1; }
  local port; port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    > "$WORK/redis.log" 2>&1 &
  local rpid=$!
  echo "pid $rpid" >> "$REGISTRY"
  local up=0
  for _ in $(seq 100); do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then up=1; break; fi
    sleep 0.1
  done
  [ "$up" = 1 ] || { echo "redis-server did not start" >&2; return 1; }
  local s0 s1 mp=$WORK/mnt-solo
  start_mock shared-solo --generate "$N_SHARED"
  read_stats s0
  mount_fs "$mp"
  timed ls -lR "$mp/inquiries" > "$WORK/shared-solo.lsr"
  # Mount start (its listing) + walk; the shared mounts below are started one after the
  # other but counted as if started at once: the slowest start + the walks.
  local t_one; t_one=$(calc "$FS_READY + $T")
  read_stats s1
  unmount_fs "$mp"; stop_pid "$MOCK_PID"
  local api_one; api_one=$(delta s0 s1 0)
  local limited_one; limited_one=$(delta s0 s1 5)

  start_mock shared-many --generate "$N_SHARED"
  read_stats s0
  local i pids=() walkers=() ready=0
  for i in $(seq "$SHARED_MOUNTS"); do
    mount_fs "$WORK/mnt-shared$i" --shared-state "redis://127.0.0.1:$port/0"
    pids+=("$FS_PID")
    holds "$FS_READY > $ready" && ready=$FS_READY
  done
  local t0; t0=$(now)
  for i in $(seq "$SHARED_MOUNTS"); do
    timeout --foreground "$TIMEOUT" ls -lR "$WORK/mnt-shared$i/inquiries" > "$WORK/shared$i.lsr" &
    walkers+=($!)
  done
  local failed=0
  for i in "${walkers[@]}"; do wait "$i" || failed=1; done
  local t_many; t_many=$(calc "$ready + $(since "$t0")")
  read_stats s1
  for i in $(seq "$SHARED_MOUNTS"); do unmount_fs "$WORK/mnt-shared$i" "${pids[$((i - 1))]}"; done
  stop_pid "$MOCK_PID"; stop_pid "$rpid"
  [ "$failed" = 0 ] || { echo "an ls -lR of a shared mount failed" >&2; return 1; }
  local api_many; api_many=$(delta s0 s1 0)
  local limited; limited=$(delta s0 s1 5)
  local same=0
  for i in $(seq "$SHARED_MOUNTS"); do
    [ "$(wc -l < "$WORK/shared$i.lsr")" = "$(wc -l < "$WORK/shared-solo.lsr")" ] && same=$((same + 1))
  done
  local notes="$SHARED_MOUNTS mounts: $api_many API calls ($(delta s0 s1 1) list, $(delta s0 s1 2) retrieve), $limited answered 429; one mount alone: $api_one API calls, $limited_one answered 429; $same of $SHARED_MOUNTS walks as long as the solo one; times = the slowest mount start + the walks"
  record "$SHARED_MOUNTS shared mounts, ls -lR of $N_SHARED inquiries: 429 answers" "$limited" "$limited_one" "0 (ok if 0)" "$(okif "$limited == 0")" "$notes"
  record "$SHARED_MOUNTS shared mounts, ls -lR of $N_SHARED inquiries: API calls" "$api_many" "$api_one" "≤ 1.1 × one mount's" "$(okif "$api_many <= 1.1 * $api_one")" "$notes"
  record "$SHARED_MOUNTS shared mounts, ls -lR of $N_SHARED inquiries: wall time" "$t_many" "$t_one" "≤ 1.2 × one mount's" "$(okif "$t_many <= 1.2 * $t_one && $same == $SHARED_MOUNTS")" "$notes"
  rm -rf "$WORK"/mnt-shared*.cache "$mp.cache"
}

# budget_run LABEL MOUNTS BUSY [REDIS_URL]: MOUNTS mounts with default options (sharing
# REDIS_URL when given) on a fresh mock of N_BUDGET inquiries walk and copy them all at once
# (ls -lR, then cp -r), while the backend stand-in sends its requests when BUSY is 1. Sets
# B_WALL (s), B_RATE (personafs's API calls per window), B_OWN_429, B_BACKEND ("sent 429s"
# as the mock counted them), B_FAILED (1 when a walk or copy failed or copied too little).
budget_run() {
  local label=$1 mounts=$2 busy=$3 url=${4:-}
  start_mock "budget-$label" --generate "$N_BUDGET" --rate-window "$BUDGET_WINDOW"
  local i pids=() walkers=() flags=() bpid=
  [ -n "$url" ] && flags=(--shared-state "$url")
  for i in $(seq "$mounts"); do
    mount_fs "$WORK/mnt-budget$i" "${flags[@]}"
    pids+=("$FS_PID")
  done
  if [ "$busy" = 1 ]; then
    $UTIL backend "$MOCK_API" "$BACKEND_RATE" "$BUDGET_WINDOW_S" &
    bpid=$!
    echo "pid $bpid" >> "$REGISTRY"
  fi
  local c0 c1 t0
  read -r -a c0 <<< "$($UTIL client "$MOCK_BASE" untagged)"
  t0=$(now)
  for i in $(seq "$mounts"); do
    timeout --foreground "$TIMEOUT" bash -c 'ls -lR "$1/inquiries" > /dev/null && cp -r "$1/inquiries" "$2"' \
      _ "$WORK/mnt-budget$i" "$WORK/budget-copy$i" &
    walkers+=($!)
  done
  B_FAILED=0
  for i in "${walkers[@]}"; do wait "$i" || B_FAILED=1; done
  B_WALL=$(since "$t0")
  read -r -a c1 <<< "$($UTIL client "$MOCK_BASE" untagged)"
  [ -n "$bpid" ] && stop_pid "$bpid"
  B_BACKEND=$($UTIL client "$MOCK_BASE" backend)
  B_RATE=$(calc "(${c1[0]} - ${c0[0]}) * $BUDGET_WINDOW_S / $B_WALL")
  B_OWN_429=$(( c1[1] - c0[1] ))
  for i in $(seq "$mounts"); do
    [ "$(ls "$WORK/budget-copy$i" 2> /dev/null | wc -l)" = "$N_BUDGET" ] || B_FAILED=1
    unmount_fs "$WORK/mnt-budget$i" "${pids[$((i - 1))]}"
    rm -rf "$WORK/budget-copy$i" "$WORK/mnt-budget$i.cache"
  done
  stop_pid "$MOCK_PID"
}

# wl_budget (issue #29): with default options personafs leaves the customer's own systems
# their part of Persona's budget. A stand-in for their backend (bench_util.py backend, its
# own client tag) sends BACKEND_RATE requests a window while personafs walks and copies
# N_BUDGET inquiries against the mock limited to RATE_LIMIT a window: the backend must get no
# 429 and personafs must finish and still make at least 80 requests a window (300 − 120 − the
# reserve's 90); with the backend idle, at least 135 (its share of 150); the same with two
# mounts sharing Redis (both walk and copy everything).
wl_budget() {
  BUDGET_WINDOW=${BENCH_BUDGET_WINDOW:-60s}
  BUDGET_WINDOW_S=$(python3 -c "import sys; t = sys.argv[1]; print(float(t[:-1]) * {'s': 1, 'm': 60}[t[-1]] if t[-1] in 'sm' else float(t))" "$BUDGET_WINDOW")
  BACKEND_RATE=${BENCH_BACKEND_RATE:-120}
  local per=a\ minute; [ "$BUDGET_WINDOW" = 60s ] || per="a window of $BUDGET_WINDOW"
  local rows=("one mount|1|1|80" "one mount, backend idle|1|0|135") row label mounts busy least
  local rpid= url=
  if command -v redis-server > /dev/null; then
    local port; port=$($UTIL free-port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
      > "$WORK/redis-budget.log" 2>&1 &
    rpid=$!
    echo "pid $rpid" >> "$REGISTRY"
    url="redis://127.0.0.1:$port/0"
    rows+=("two mounts sharing Redis|2|1|80")
  else
    echo "wl_budget: no redis-server, the two-mount row is left out" >&2
  fi
  for row in "${rows[@]}"; do
    IFS='|' read -r label mounts busy least <<< "$row"
    local shared=; [ "$mounts" -gt 1 ] && shared=$url
    log "budget: $label"
    budget_run "$(echo "$label" | tr -c 'a-z0-9' -)" "$mounts" "$busy" "$shared"
    local sent refused
    read -r sent refused <<< "$B_BACKEND"
    local backend_note="backend idle"
    [ "$busy" = 1 ] && backend_note="backend $BACKEND_RATE requests $per: $sent sent, $refused answered 429"
    local notes="$backend_note; personafs $(r0 "$B_RATE") API calls $per over the walk and copy (its own 429s: $B_OWN_429), wall time $(r0 "$B_WALL") s$([ "$B_FAILED" = 1 ] && echo '; A WALK OR COPY FAILED')"
    record "budget share, $label: ls -lR + cp -r of $N_BUDGET inquiries, limit $RATE_LIMIT $per" \
      "$B_WALL" - "≥ $least personafs calls $per" "$(okif "$B_RATE >= $least && $B_FAILED == 0")" "$notes" \
      --target "backend 0 × 429=$(okif "$refused == 0")" --target "no error=$(okif "$B_FAILED == 0")"
  done
  [ -n "$rpid" ] && stop_pid "$rpid"
  return 0
}

# Each workload runs in a subshell with errexit and its own cleanup, so one that fails is
# recorded and the others still run.
FAILED=0
run() {
  local name=$1
  log "workload: $name"
  set +e
  (
    set -e
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    "$name"
  )
  local rc=$?
  set -e
  if [ "$rc" = 130 ]; then exit 130; fi
  if [ "$rc" != 0 ]; then
    FAILED=1
    record "$name" - - "–" false "ERROR: exit $rc (see the log above)"
  fi
}

bench_start=$(now)
# wl_budget runs minutes at Persona's real pace: the full run has it, --quick only by BENCH_ONLY.
WORKLOADS="wl_tree wl_large wl_link_tree wl_ls wl_memory wl_scale wl_deltas wl_million wl_views wl_views_million wl_offline wl_changes wl_shared"
[ "$QUICK" = 1 ] || WORKLOADS="$WORKLOADS wl_budget"
for workload in ${BENCH_ONLY:-$WORKLOADS}; do
  run "$workload"
done
[ -e "$WORK/bytes_differ" ] && FAILED=1

echo
echo "personafs benchmark$([ "$QUICK" = 1 ] && echo ' (--quick)'): mock API latency ${API_LATENCY_MS} ms, files latency ${FILES_LATENCY_MS} ms, rate limit ${RATE_LIMIT}/min; $PAIRS pairs per side-by-side median; $(since "$bench_start") s"
echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
$UTIL report "$RESULTS" "$OUT"
echo
echo "JSON: $OUT"
exit "$FAILED"
