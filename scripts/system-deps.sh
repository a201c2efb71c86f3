#!/usr/bin/env bash
# Installs the system packages the build needs, when missing (Debian/Ubuntu):
#   libclang-dev       bindgen in librocksdb-sys
#   protobuf-compiler  protoc, for later gRPC code generation
#   postgresql-client  psql, which the tests drive against perdure's SQL port
# Also makes sure cargo-nextest is there for the tests (--with-nextest).
set -euo pipefail

missing=()
for p in libclang-dev protobuf-compiler; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
if ((${#missing[@]})); then
  echo "system-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-nextest" ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "system-deps: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest >&2
fi
