#!/usr/bin/env bash
# Load benchmark: perdure vs restate-server 1.7.12, run one after the other on this machine.
#
#   bench/run.sh [--only perdure|restate] [--duration SECONDS] [--perdure-bin PATH] [--build|--no-build]
#                [--warmup SECONDS] [--wrk-threads N] [--keys N] [--keep] [--baseline FILE]
#
# Installs what it needs (restate-server from npm into the perdure cache, wrk from Debian, Node 22 and
# the test services via scripts/setup-node.sh), builds perdure (cargo build --release -p perdure) when
# the default binary is missing (--build: always, to pick up source changes; --no-build: never),
# then hands over to bench/bench.py, which prints a markdown
# table and writes bench/out/latest.json. Environment equivalents: BENCH_ONLY, BENCH_DURATION,
# BENCH_WARMUP, BENCH_WRK_THREADS, BENCH_KEYS, BENCH_BASELINE, PERDURE_BIN, PERDURE_CACHE.
# --baseline FILE (with --only) fills the other column from an earlier report, e.g. a copy of
# bench/out/latest.json from a restate-only run; see bench/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/.." && pwd -P)"
cache="${PERDURE_CACHE:-$HOME/.cache/perdure}"
restate_version=1.7.12
restate_prefix="$cache/restate-$restate_version"
# The native binary, not the npm wrapper script: the benchmark measures this process's CPU and memory.
restate_bin="$restate_prefix/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"

only="${BENCH_ONLY:-}"
perdure_bin="${PERDURE_BIN:-}"
build=auto
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:-}"; shift ;;
    --only=*) only="${1#*=}" ;;
    --perdure-bin) perdure_bin="${2:-}"; shift ;;
    --perdure-bin=*) perdure_bin="${1#*=}" ;;
    --no-build) build=never ;;
    --build) build=always ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exec python3 "$here/bench.py" --help ;;
  esac
  shift
done
# --build / --no-build are ours, not bench.py's.
pass=()
for a in "${args[@]+"${args[@]}"}"; do
  case "$a" in --build|--no-build) ;; *) pass+=("$a") ;; esac
done

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
say() { echo "[run.sh] $*" >&2; }

# --- wrk -------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (apt-get)"
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

# --- Node 22 + test services -----------------------------------------------------------------
node22="$("$repo/scripts/setup-node.sh" --print-node | tail -n1)"

# --- restate-server --------------------------------------------------------------------------
if want restate && [ ! -x "$restate_bin" ]; then
  say "installing @restatedev/restate-server@$restate_version into $restate_prefix"
  mkdir -p "$restate_prefix"
  npm install --prefix "$restate_prefix" --no-audit --no-fund --no-save --loglevel=error \
    "@restatedev/restate-server@$restate_version" >/dev/null
fi

# --- perdure ---------------------------------------------------------------------------------
if want perdure && [ -z "$perdure_bin" ]; then
  target_dir="${CARGO_TARGET_DIR:-}"
  if [ -z "$target_dir" ] && command -v cargo >/dev/null 2>&1; then
    target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || true)"
  fi
  perdure_bin="${target_dir:-/root/.cache/perdure/target}/release/perdure"
  if [ "$build" = always ] || { [ "$build" = auto ] && [ ! -x "$perdure_bin" ]; }; then
    say "cargo build --release -p perdure (a cold release build takes long on 2 cores)"
    if ! (cd "$repo" && cargo build --release -p perdure --quiet); then
      if [ -x "$perdure_bin" ]; then
        say "WARNING: cargo build failed; benchmarking the existing (possibly stale) $perdure_bin"
      else
        say "WARNING: cargo build failed and $perdure_bin does not exist: perdure will be skipped"
      fi
    fi
  fi
fi

# --- Rust SDK services (only with --sdk rust) ------------------------------------------------------
if [[ " ${args[*]-} " == *" --sdk rust "* ]] || [ "${BENCH_SDK:-}" = rust ]; then
  say "cargo build --release -p perdure-rust-services"
  (cd "$repo" && cargo build --release -p perdure-rust-services --quiet)
fi

# --- run -------------------------------------------------------------------------------------
# bench.py records the process groups it starts in this file; if it dies without cleaning up,
# the trap stops whatever is left.
pidfile="$(mktemp -t perdure-bench-pids.XXXXXX)"
bench_pid=""
cleanup() {
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  if [ -s "$pidfile" ]; then
    while read -r pg; do
      [ -n "$pg" ] && kill -TERM -- "-$pg" 2>/dev/null || true
    done <"$pidfile"
  fi
  rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# bench.py runs in the background so that the traps above fire at once on a signal.
BENCH_PIDFILE="$pidfile" NODE22="$node22" python3 "$here/bench.py" \
  --restate-bin "$restate_bin" ${perdure_bin:+--perdure-bin "$perdure_bin"} \
  "${pass[@]+"${pass[@]}"}" &
bench_pid=$!
rc=0
wait "$bench_pid" || rc=$?
bench_pid=""
exit "$rc"
