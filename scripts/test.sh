#!/usr/bin/env bash
# The test suite: installs what it needs (system packages, Node 22 and the TypeScript SDK for the
# end-to-end tests), checks formatting and lints, builds everything once and runs all tests with
# cargo-nextest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# .cargo/config.toml keeps the build under /root/.cache (machines of this kind run as root);
# anyone else builds under their own home.
if [ -z "${CARGO_TARGET_DIR:-}" ] && ! { mkdir -p /root/.cache/perdure 2>/dev/null && [ -w /root/.cache/perdure ]; }; then
  export CARGO_TARGET_DIR="$HOME/.cache/perdure/target"
fi
cd "$repo"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
"$repo/scripts/system-deps.sh" --with-nextest
"$repo/scripts/setup-node.sh"
"$repo/scripts/setup-python.sh"
# The target dir is a cache: keep a runaway one from filling the disk.
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
if [ -d "$target" ] && [ "$(du -sm "$target" 2>/dev/null | cut -f1)" -gt 60000 ]; then
  echo "test.sh: target dir over 60 GB, cleaning it" >&2
  cargo clean
fi
# The lint gate: formatting, then clippy with every warning an error. Clippy runs as the
# compiler of the workspace's own crates (RUSTC_WORKSPACE_WRAPPER, exported for the whole
# script so nextest's builds agree): the one build both lints and makes the test binaries, and
# each dependency is compiled once (`cargo clippy` would compile them all again in check mode).
cargo fmt --all --check
export RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
time cargo build --workspace --all-targets --locked
if [ "$#" -eq 0 ]; then
  # The unit suite 40 times over, 4 processes at a time, with short property tests: a process
  # that crashes on its way out (as RocksDB did when its last handle was dropped on another
  # thread during exit) fails this run. The end-to-end suite repeats server shutdowns itself.
  # Selected with a filter over the whole workspace, not `-p perdure`: a package selection
  # unifies other features and would build the dependencies a second time.
  PERDURE_FUZZ_CASES=16 cargo nextest run --workspace --locked --profile ci --no-fail-fast \
    -E 'package(perdure) & kind(lib)' \
    --stress-count 40 --test-threads 4 --hide-progress-bar --status-level fail --final-status-level fail
fi
cargo nextest run --workspace --locked --profile ci --no-fail-fast "$@"
