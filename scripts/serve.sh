#!/usr/bin/env bash
# Builds perdure (release) and runs `perdure serve` on its embedded defaults:
# RocksDB under ./perdure-data, ingress 127.0.0.1:8080, admin 127.0.0.1:9070.
# Extra arguments go to `perdure serve` (e.g. --data-dir DIR, --config perdure.toml).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# .cargo/config.toml keeps the build under /root/.cache (machines of this kind run as root);
# anyone else builds under their own home.
if [ -z "${CARGO_TARGET_DIR:-}" ] && ! { mkdir -p /root/.cache/perdure 2>/dev/null && [ -w /root/.cache/perdure ]; }; then
  export CARGO_TARGET_DIR="$HOME/.cache/perdure/target"
fi
"$repo/scripts/system-deps.sh"
cd "$repo"
cargo build --release --locked -p perdure --bin perdure
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$target/release/perdure" serve "$@"
